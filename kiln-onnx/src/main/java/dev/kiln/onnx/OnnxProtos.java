package dev.kiln.onnx;

import com.google.protobuf.DescriptorProtos.DescriptorProto;
import com.google.protobuf.DescriptorProtos.EnumDescriptorProto;
import com.google.protobuf.DescriptorProtos.EnumValueDescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Label;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Type;
import com.google.protobuf.DescriptorProtos.FieldOptions;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.DescriptorProtos.OneofDescriptorProto;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.DescriptorValidationException;
import com.google.protobuf.Descriptors.FileDescriptor;

/**
 * The subset of ONNX's messages Kiln writes, as descriptors built in Java (no protoc offline), so that
 * {@code DynamicMessage} does the wire encoding. Field numbers and types as in onnx/onnx.proto (proto2, package onnx):
 * <pre>
 * ModelProto        { int64 ir_version = 1; repeated OperatorSetIdProto opset_import = 8; string producer_name = 2;
 *                     string producer_version = 3; string doc_string = 6; GraphProto graph = 7; ... }
 * OperatorSetIdProto { string domain = 1; int64 version = 2; }
 * GraphProto        { repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5;
 *                     string doc_string = 10; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; ... }
 * NodeProto         { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4;
 *                     repeated AttributeProto attribute = 5; string doc_string = 6; string domain = 7; }
 * AttributeProto    { string name = 1; float f = 2; int64 i = 3; bytes s = 4; repeated float floats = 7;
 *                     repeated int64 ints = 8; AttributeType type = 20; ... }
 *                     AttributeType: UNDEFINED 0, FLOAT 1, INT 2, STRING 3, ..., FLOATS 6, INTS 7, ...
 * TensorProto       { repeated int64 dims = 1; int32 data_type = 2; repeated float float_data = 4 [packed];
 *                     repeated int64 int64_data = 7 [packed]; string name = 8; bytes raw_data = 9; ... }
 *                     DataType: FLOAT 1, ..., INT64 7, ...
 * ValueInfoProto    { string name = 1; TypeProto type = 2; string doc_string = 3; }
 * TypeProto         { oneof value { Tensor tensor_type = 1; ... } }   Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
 * TensorShapeProto  { repeated Dimension dim = 1; }   Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
 * </pre>
 * Fields Kiln does not write (segments, sparse tensors, functions, training info, ...) are left out; a reader skips them.
 */
final class OnnxProtos {
    static final Descriptor MODEL, OPSET, GRAPH, NODE, ATTRIBUTE, TENSOR, VALUE_INFO, TYPE, TYPE_TENSOR, SHAPE, DIMENSION;

    /** TensorProto.DataType values. */
    static final int FLOAT = 1, INT64 = 7;

    /** AttributeProto.AttributeType values. */
    static final int ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_INTS = 7;

    static {
        FileDescriptorProto file = FileDescriptorProto.newBuilder()
                .setName("kiln/onnx/onnx.proto")
                .setPackage("onnx")
                .setSyntax("proto2")
                .addMessageType(DescriptorProto.newBuilder().setName("AttributeProto")
                        .addEnumType(EnumDescriptorProto.newBuilder().setName("AttributeType")
                                .addValue(value("UNDEFINED", 0)).addValue(value("FLOAT", 1)).addValue(value("INT", 2))
                                .addValue(value("STRING", 3)).addValue(value("TENSOR", 4)).addValue(value("GRAPH", 5))
                                .addValue(value("FLOATS", 6)).addValue(value("INTS", 7)).addValue(value("STRINGS", 8))
                                .addValue(value("TENSORS", 9)).addValue(value("GRAPHS", 10)).addValue(value("SPARSE_TENSOR", 11))
                                .addValue(value("SPARSE_TENSORS", 12)).addValue(value("TYPE_PROTO", 13)).addValue(value("TYPE_PROTOS", 14)))
                        .addField(field("name", 1, Type.TYPE_STRING))
                        .addField(field("f", 2, Type.TYPE_FLOAT))
                        .addField(field("i", 3, Type.TYPE_INT64))
                        .addField(field("s", 4, Type.TYPE_BYTES))
                        .addField(field("floats", 7, Type.TYPE_FLOAT).setLabel(Label.LABEL_REPEATED))
                        .addField(field("ints", 8, Type.TYPE_INT64).setLabel(Label.LABEL_REPEATED))
                        .addField(field("type", 20, Type.TYPE_ENUM).setTypeName(".onnx.AttributeProto.AttributeType")))
                .addMessageType(DescriptorProto.newBuilder().setName("ValueInfoProto")
                        .addField(field("name", 1, Type.TYPE_STRING))
                        .addField(message("type", 2, ".onnx.TypeProto"))
                        .addField(field("doc_string", 3, Type.TYPE_STRING)))
                .addMessageType(DescriptorProto.newBuilder().setName("NodeProto")
                        .addField(repeated("input", 1, Type.TYPE_STRING))
                        .addField(repeated("output", 2, Type.TYPE_STRING))
                        .addField(field("name", 3, Type.TYPE_STRING))
                        .addField(field("op_type", 4, Type.TYPE_STRING))
                        .addField(message("attribute", 5, ".onnx.AttributeProto").setLabel(Label.LABEL_REPEATED))
                        .addField(field("doc_string", 6, Type.TYPE_STRING))
                        .addField(field("domain", 7, Type.TYPE_STRING)))
                .addMessageType(DescriptorProto.newBuilder().setName("ModelProto")
                        .addField(field("ir_version", 1, Type.TYPE_INT64))
                        .addField(field("producer_name", 2, Type.TYPE_STRING))
                        .addField(field("producer_version", 3, Type.TYPE_STRING))
                        .addField(field("doc_string", 6, Type.TYPE_STRING))
                        .addField(message("graph", 7, ".onnx.GraphProto"))
                        .addField(message("opset_import", 8, ".onnx.OperatorSetIdProto").setLabel(Label.LABEL_REPEATED)))
                .addMessageType(DescriptorProto.newBuilder().setName("GraphProto")
                        .addField(message("node", 1, ".onnx.NodeProto").setLabel(Label.LABEL_REPEATED))
                        .addField(field("name", 2, Type.TYPE_STRING))
                        .addField(message("initializer", 5, ".onnx.TensorProto").setLabel(Label.LABEL_REPEATED))
                        .addField(field("doc_string", 10, Type.TYPE_STRING))
                        .addField(message("input", 11, ".onnx.ValueInfoProto").setLabel(Label.LABEL_REPEATED))
                        .addField(message("output", 12, ".onnx.ValueInfoProto").setLabel(Label.LABEL_REPEATED)))
                .addMessageType(DescriptorProto.newBuilder().setName("TensorProto")
                        .addField(repeated("dims", 1, Type.TYPE_INT64))
                        .addField(field("data_type", 2, Type.TYPE_INT32))
                        .addField(packed("float_data", 4, Type.TYPE_FLOAT))
                        .addField(packed("int64_data", 7, Type.TYPE_INT64))
                        .addField(field("name", 8, Type.TYPE_STRING))
                        .addField(field("raw_data", 9, Type.TYPE_BYTES)))
                .addMessageType(DescriptorProto.newBuilder().setName("TensorShapeProto")
                        .addNestedType(DescriptorProto.newBuilder().setName("Dimension")
                                .addOneofDecl(OneofDescriptorProto.newBuilder().setName("value"))
                                .addField(field("dim_value", 1, Type.TYPE_INT64).setOneofIndex(0))
                                .addField(field("dim_param", 2, Type.TYPE_STRING).setOneofIndex(0)))
                        .addField(message("dim", 1, ".onnx.TensorShapeProto.Dimension").setLabel(Label.LABEL_REPEATED)))
                .addMessageType(DescriptorProto.newBuilder().setName("TypeProto")
                        .addNestedType(DescriptorProto.newBuilder().setName("Tensor")
                                .addField(field("elem_type", 1, Type.TYPE_INT32))
                                .addField(message("shape", 2, ".onnx.TensorShapeProto")))
                        .addOneofDecl(OneofDescriptorProto.newBuilder().setName("value"))
                        .addField(message("tensor_type", 1, ".onnx.TypeProto.Tensor").setOneofIndex(0)))
                .addMessageType(DescriptorProto.newBuilder().setName("OperatorSetIdProto")
                        .addField(field("domain", 1, Type.TYPE_STRING))
                        .addField(field("version", 2, Type.TYPE_INT64)))
                .build();
        FileDescriptor built;
        try {
            built = FileDescriptor.buildFrom(file, new FileDescriptor[0]);
        } catch (DescriptorValidationException e) {
            throw new ExceptionInInitializerError(e);
        }
        MODEL = built.findMessageTypeByName("ModelProto");
        OPSET = built.findMessageTypeByName("OperatorSetIdProto");
        GRAPH = built.findMessageTypeByName("GraphProto");
        NODE = built.findMessageTypeByName("NodeProto");
        ATTRIBUTE = built.findMessageTypeByName("AttributeProto");
        TENSOR = built.findMessageTypeByName("TensorProto");
        VALUE_INFO = built.findMessageTypeByName("ValueInfoProto");
        TYPE = built.findMessageTypeByName("TypeProto");
        TYPE_TENSOR = TYPE.findNestedTypeByName("Tensor");
        SHAPE = built.findMessageTypeByName("TensorShapeProto");
        DIMENSION = SHAPE.findNestedTypeByName("Dimension");
    }

    private OnnxProtos() {}

    private static EnumValueDescriptorProto value(String name, int number) {
        return EnumValueDescriptorProto.newBuilder().setName(name).setNumber(number).build();
    }

    private static FieldDescriptorProto.Builder field(String name, int number, Type type) {
        return FieldDescriptorProto.newBuilder().setName(name).setNumber(number).setType(type).setLabel(Label.LABEL_OPTIONAL);
    }

    private static FieldDescriptorProto.Builder repeated(String name, int number, Type type) {
        return field(name, number, type).setLabel(Label.LABEL_REPEATED);
    }

    private static FieldDescriptorProto.Builder message(String name, int number, String typeName) {
        return field(name, number, Type.TYPE_MESSAGE).setTypeName(typeName);
    }

    /** onnx.proto marks these {@code [packed = true]}. */
    private static FieldDescriptorProto.Builder packed(String name, int number, Type type) {
        return repeated(name, number, type).setOptions(FieldOptions.newBuilder().setPacked(true));
    }
}

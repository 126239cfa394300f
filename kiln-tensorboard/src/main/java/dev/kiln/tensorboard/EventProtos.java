package dev.kiln.tensorboard;

import com.google.protobuf.DescriptorProtos.DescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Label;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Type;
import com.google.protobuf.DescriptorProtos.FieldOptions;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.DescriptorProtos.OneofDescriptorProto;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.DescriptorValidationException;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.FileDescriptor;

/**
 * The subset of TensorBoard's messages Kiln writes, as descriptors built in Java (no protoc offline), so that
 * {@code DynamicMessage} does all the wire encoding. Field numbers and types as in TensorFlow's files:
 * <pre>
 * tensorflow/core/util/event.proto, message Event:
 *   double wall_time = 1; int64 step = 2;
 *   oneof what { string file_version = 3; Summary summary = 5; ... }   (graph_def 4, log_message 6, ... left out)
 * tensorflow/core/framework/summary.proto, message Summary { repeated Value value = 1; }
 *   message Value { string tag = 1; oneof value { float simple_value = 2; HistogramProto histo = 5; ... } }
 *   SummaryMetadata metadata = 9;   (node_name 7, image 4, audio 6, tensor 8 left out)
 * tensorflow/core/framework/summary.proto, message SummaryMetadata { PluginData plugin_data = 1; ... }
 *   message PluginData { string plugin_name = 1; bytes content = 2; }
 * tensorflow/core/framework/summary.proto (histogram.proto in newer TensorFlow), message HistogramProto:
 *   double min = 1; double max = 2; double num = 3; double sum = 4; double sum_squares = 5;
 *   repeated double bucket_limit = 6 [packed = true]; repeated double bucket = 7 [packed = true];
 * </pre>
 * All three live in one file of package {@code tensorflow} (proto3), so the full names
 * ({@code tensorflow.Event}, ...) are TensorFlow's.
 */
final class EventProtos {
    static final Descriptor EVENT;
    static final Descriptor SUMMARY;
    static final Descriptor VALUE;
    static final Descriptor HISTOGRAM;

    static final FieldDescriptor EVENT_WALL_TIME;
    static final FieldDescriptor EVENT_STEP;
    static final FieldDescriptor EVENT_FILE_VERSION;
    static final FieldDescriptor EVENT_SUMMARY;
    static final FieldDescriptor SUMMARY_VALUE;
    static final FieldDescriptor VALUE_TAG;
    static final FieldDescriptor VALUE_SIMPLE_VALUE;
    static final FieldDescriptor VALUE_HISTO;
    static final Descriptor METADATA;
    static final Descriptor PLUGIN_DATA;
    static final FieldDescriptor VALUE_METADATA;
    static final FieldDescriptor METADATA_PLUGIN_DATA;
    static final FieldDescriptor PLUGIN_NAME;
    static final FieldDescriptor PLUGIN_CONTENT;

    static {
        FileDescriptorProto file = FileDescriptorProto.newBuilder()
                .setName("kiln/tensorboard/event.proto")
                .setPackage("tensorflow")
                .setSyntax("proto3")
                .addMessageType(DescriptorProto.newBuilder().setName("HistogramProto")
                        .addField(field("min", 1, Type.TYPE_DOUBLE))
                        .addField(field("max", 2, Type.TYPE_DOUBLE))
                        .addField(field("num", 3, Type.TYPE_DOUBLE))
                        .addField(field("sum", 4, Type.TYPE_DOUBLE))
                        .addField(field("sum_squares", 5, Type.TYPE_DOUBLE))
                        .addField(packed("bucket_limit", 6))
                        .addField(packed("bucket", 7)))
                .addMessageType(DescriptorProto.newBuilder().setName("SummaryMetadata")
                        .addNestedType(DescriptorProto.newBuilder().setName("PluginData")
                                .addField(field("plugin_name", 1, Type.TYPE_STRING))
                                .addField(field("content", 2, Type.TYPE_BYTES)))
                        .addField(message("plugin_data", 1, ".tensorflow.SummaryMetadata.PluginData")))
                .addMessageType(DescriptorProto.newBuilder().setName("Summary")
                        .addNestedType(DescriptorProto.newBuilder().setName("Value")
                                .addOneofDecl(OneofDescriptorProto.newBuilder().setName("value"))
                                .addField(field("tag", 1, Type.TYPE_STRING))
                                .addField(field("simple_value", 2, Type.TYPE_FLOAT).setOneofIndex(0))
                                .addField(message("histo", 5, ".tensorflow.HistogramProto").setOneofIndex(0))
                                .addField(message("metadata", 9, ".tensorflow.SummaryMetadata")))
                        .addField(message("value", 1, ".tensorflow.Summary.Value").setLabel(Label.LABEL_REPEATED)))
                .addMessageType(DescriptorProto.newBuilder().setName("Event")
                        .addOneofDecl(OneofDescriptorProto.newBuilder().setName("what"))
                        .addField(field("wall_time", 1, Type.TYPE_DOUBLE))
                        .addField(field("step", 2, Type.TYPE_INT64))
                        .addField(field("file_version", 3, Type.TYPE_STRING).setOneofIndex(0))
                        .addField(message("summary", 5, ".tensorflow.Summary").setOneofIndex(0)))
                .build();
        FileDescriptor built;
        try {
            built = FileDescriptor.buildFrom(file, new FileDescriptor[0]);
        } catch (DescriptorValidationException e) {
            throw new ExceptionInInitializerError(e);
        }
        HISTOGRAM = built.findMessageTypeByName("HistogramProto");
        SUMMARY = built.findMessageTypeByName("Summary");
        VALUE = SUMMARY.findNestedTypeByName("Value");
        EVENT = built.findMessageTypeByName("Event");
        EVENT_WALL_TIME = EVENT.findFieldByNumber(1);
        EVENT_STEP = EVENT.findFieldByNumber(2);
        EVENT_FILE_VERSION = EVENT.findFieldByNumber(3);
        EVENT_SUMMARY = EVENT.findFieldByNumber(5);
        SUMMARY_VALUE = SUMMARY.findFieldByNumber(1);
        VALUE_TAG = VALUE.findFieldByNumber(1);
        VALUE_SIMPLE_VALUE = VALUE.findFieldByNumber(2);
        VALUE_HISTO = VALUE.findFieldByNumber(5);
        VALUE_METADATA = VALUE.findFieldByNumber(9);
        METADATA = built.findMessageTypeByName("SummaryMetadata");
        PLUGIN_DATA = METADATA.findNestedTypeByName("PluginData");
        METADATA_PLUGIN_DATA = METADATA.findFieldByNumber(1);
        PLUGIN_NAME = PLUGIN_DATA.findFieldByNumber(1);
        PLUGIN_CONTENT = PLUGIN_DATA.findFieldByNumber(2);
    }

    private EventProtos() {}

    private static FieldDescriptorProto.Builder field(String name, int number, Type type) {
        return FieldDescriptorProto.newBuilder().setName(name).setNumber(number).setType(type)
                .setLabel(Label.LABEL_OPTIONAL).setJsonName(jsonName(name));
    }

    private static FieldDescriptorProto.Builder message(String name, int number, String typeName) {
        return field(name, number, Type.TYPE_MESSAGE).setTypeName(typeName);
    }

    /** proto3 packs repeated scalars by default; {@code [packed = true]} is said anyway, as TensorFlow's file does. */
    private static FieldDescriptorProto.Builder packed(String name, int number) {
        return field(name, number, Type.TYPE_DOUBLE).setLabel(Label.LABEL_REPEATED)
                .setOptions(FieldOptions.newBuilder().setPacked(true));
    }

    private static String jsonName(String name) {
        StringBuilder out = new StringBuilder();
        boolean upper = false;
        for (char c : name.toCharArray()) {
            if (c == '_') {
                upper = true;
            } else {
                out.append(upper ? Character.toUpperCase(c) : c);
                upper = false;
            }
        }
        return out.toString();
    }
}

package dev.kiln.tensorboard;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Value;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;

/**
 * The hparams plugin's content, encoded by hand (three small messages, so no descriptors are built for them), as in
 * tensorboard/plugins/hparams/plugin_data.proto:
 * <pre>
 * message HParamsPluginData { int32 version = 1; oneof data { ...; SessionStartInfo session_start_info = 3; ... } }
 * message SessionStartInfo { map&lt;string, google.protobuf.Value&gt; hparams = 1; ...; double start_time_secs = 5; }
 * </pre>
 * A map field is a repeated entry message {@code { string key = 1; Value value = 2; }}.
 */
final class HParams {
    static final String PLUGIN_NAME = "hparams";
    static final String SESSION_START_INFO_TAG = "_hparams_/session_start_info";

    private HParams() {}

    /** HParamsPluginData (version 0, as PyTorch writes) holding a SessionStartInfo. */
    static ByteString sessionStartInfo(Map<String, ?> hparams, double startSeconds) {
        ByteString.Output info = ByteString.newOutput();
        try {
            CodedOutputStream c = CodedOutputStream.newInstance(info);
            for (var e : hparams.entrySet()) {
                ByteString.Output entry = ByteString.newOutput();
                CodedOutputStream ce = CodedOutputStream.newInstance(entry);
                ce.writeString(1, e.getKey());
                ce.writeMessage(2, value(e.getValue()));
                ce.flush();
                c.writeBytes(1, entry.toByteString());
            }
            c.writeDouble(5, startSeconds);
            c.flush();
            ByteString.Output data = ByteString.newOutput();
            CodedOutputStream cd = CodedOutputStream.newInstance(data);
            cd.writeBytes(3, info.toByteString());
            cd.flush();
            return data.toByteString();
        } catch (IOException e) { // writing to memory
            throw new UncheckedIOException(e);
        }
    }

    /** google.protobuf.Value: number_value, bool_value or string_value. */
    static Value value(Object v) {
        return switch (v) {
            case Number n -> Value.newBuilder().setNumberValue(n.doubleValue()).build();
            case Boolean b -> Value.newBuilder().setBoolValue(b).build();
            case null -> Value.newBuilder().setStringValue("").build();
            default -> Value.newBuilder().setStringValue(v.toString()).build();
        };
    }
}

package dev.kiln.text;

import dev.kiln.io.Json;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Typed fields of a tokenizer's JSON, each missing or mistyped field an error naming it. */
final class JsonFields {
    private JsonFields() {}

    @SuppressWarnings("unchecked")
    static Map<String, Object> object(String json) {
        Object v;
        try {
            v = Json.parse(json);
        } catch (Json.ParseException e) {
            throw new IllegalArgumentException("tokenizer JSON: not valid JSON: " + e.getMessage(), e);
        }
        if (!(v instanceof Map<?, ?> m)) throw new IllegalArgumentException("tokenizer JSON: not a JSON object");
        return (Map<String, Object>) m;
    }

    static String string(Map<String, Object> o, String key) {
        if (!(field(o, key) instanceof String s)) throw wrongType(key, "a string");
        return s;
    }

    static int[] ints(Map<String, Object> o, String key) {
        if (!(field(o, key) instanceof List<?> list)) throw wrongType(key, "an array of integers");
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Long l) || l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) throw wrongType(key, "an array of integers");
            out[i] = (int) (long) l;
        }
        return out;
    }

    static List<String> strings(Map<String, Object> o, String key) {
        if (!(field(o, key) instanceof List<?> list)) throw wrongType(key, "an array of strings");
        List<String> out = new ArrayList<>(list.size());
        for (Object e : list) {
            if (!(e instanceof String s)) throw wrongType(key, "an array of strings");
            out.add(s);
        }
        return out;
    }

    static Map<?, ?> map(Map<String, Object> o, String key) {
        if (!(field(o, key) instanceof Map<?, ?> m)) throw wrongType(key, "an object");
        return m;
    }

    private static Object field(Map<String, Object> o, String key) {
        if (!o.containsKey(key)) throw new IllegalArgumentException("tokenizer JSON: no \"" + key + "\" field");
        return o.get(key);
    }

    private static IllegalArgumentException wrongType(String key, String expected) {
        return new IllegalArgumentException("tokenizer JSON: \"" + key + "\" is not " + expected);
    }
}

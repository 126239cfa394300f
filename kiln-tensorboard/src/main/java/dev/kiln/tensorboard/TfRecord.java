package dev.kiln.tensorboard;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * TFRecord framing, as TensorFlow's {@code record_writer.cc} writes it: the length as a little-endian uint64, the
 * masked CRC32C of those 8 bytes (uint32, little endian), the data, the masked CRC32C of the data.
 */
final class TfRecord {
    /** Added after the rotation; TensorFlow's {@code crc32c::Mask} ({@code kMaskDelta}). */
    static final int MASK_DELTA = 0xa282ead8;

    private TfRecord() {}

    /** CRC32C of the bytes, as an unsigned 32-bit value in an int. */
    static int crc32c(byte[] data, int offset, int length) {
        CRC32C crc = new CRC32C();
        crc.update(data, offset, length);
        return (int) crc.getValue();
    }

    /** {@code ((crc >>> 15) | (crc << 17)) + 0xa282ead8}: a CRC stored next to data it covers is masked. */
    static int mask(int crc) {
        return Integer.rotateRight(crc, 15) + MASK_DELTA;
    }

    static int unmask(int masked) {
        return Integer.rotateLeft(masked - MASK_DELTA, 15);
    }

    static int maskedCrc32c(byte[] data) {
        return mask(crc32c(data, 0, data.length));
    }

    /** Writes one record: 8 + 4 + data.length + 4 bytes. */
    static void write(OutputStream out, byte[] data) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        header.putLong(data.length);
        header.putInt(mask(crc32c(header.array(), 0, 8)));
        ByteBuffer footer = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        footer.putInt(maskedCrc32c(data));
        out.write(header.array());
        out.write(data);
        out.write(footer.array());
    }
}

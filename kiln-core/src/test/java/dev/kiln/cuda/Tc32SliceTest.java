package dev.kiln.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How gemm_tc32 splits k (MatmulCuda.tc32Slice): pure Java, the GPT benchmark's shapes on 132 multiprocessors. */
class Tc32SliceTest {
    private static final int SLOTS = 132;

    @Test void enoughTilesKeepKWhole() {
        assertEquals(384, MatmulCuda.tc32Slice(1152, 16384, 384, SLOTS), "the forward product has 1152 tiles");
        assertEquals(1536, MatmulCuda.tc32Slice(384, 16384, 1536, SLOTS));
    }

    @Test void fewTilesSplitKIntoWholeTiles() {
        for (long[] s : new long[][]{{384, 1152}, {384, 384}, {384, 1536}, {1536, 384}}) {
            int k = 16384, slice = MatmulCuda.tc32Slice(s[0], s[1], k, SLOTS), slices = (k + slice - 1) / slice;
            String what = s[0] + " x " + s[1] + " x " + k + ": slice " + slice;
            assertTrue(slice % 32 == 0 && slice >= 256 && slices >= 2 && slices <= 16, what);
            long tiles = ((s[0] + 127) / 128) * ((s[1] + 127) / 128);
            assertTrue(tiles * slices >= SLOTS / 2, what + ": " + tiles * slices + " blocks leave most multiprocessors idle");
        }
        // a weight gradient of 27 tiles: 9 slices fill two waves of 132 (243 blocks), 16384 = 8 x 1824 + 1792
        assertEquals(1824, MatmulCuda.tc32Slice(384, 1152, 16384, SLOTS));
        assertEquals(1024, MatmulCuda.tc32Slice(128, 128, 16384, SLOTS), "one tile: 16 slices at most");
    }

    @Test void shortKIsNeverSplitBelow256() {
        assertEquals(300, MatmulCuda.tc32Slice(128, 128, 300, SLOTS));
        assertEquals(256, MatmulCuda.tc32Slice(128, 128, 512, SLOTS));
    }
}

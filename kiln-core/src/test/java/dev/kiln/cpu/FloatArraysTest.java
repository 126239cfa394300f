package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The CPU's kept arrays: a released tensor's array serves the next tensor of its length, zeroed where the kernel asks
 * for zeros; an array handed in by its owner is never reused; a released tensor fails clearly. Lengths are odd ones no
 * other test allocates, so the tests running beside this one do not take its arrays.
 */
class FloatArraysTest {
    @Test void aReleasedTensorsArrayServesTheNextOfItsLength() {
        int n = FloatArrays.MIN_LENGTH + 7;
        Tensor t = CpuStorage.unsetTensor(new int[]{n}, DType.FLOAT32);
        float[] a = (float[]) CpuStorage.arrayOf(t);
        java.util.Arrays.fill(a, 5f);
        t.close();
        assertThrows(IllegalStateException.class, () -> t.toFloatArray(), "a released tensor says so");
        Tensor zeros = CpuStorage.newTensor(new int[]{n}, DType.FLOAT32);
        assertSame(a, CpuStorage.arrayOf(zeros), "the kept array is reused");
        for (float v : a) assertEquals(0f, v, "newTensor's memory is zeroed");
        zeros.close();
        Tensor again = Tensor.empty(new int[]{n}, DType.FLOAT32, dev.kiln.Device.CPU);
        assertSame(a, CpuStorage.arrayOf(again), "Tensor.empty takes it too");
    }

    @Test void anArrayHandedInIsNeverReused() {
        int n = FloatArrays.MIN_LENGTH + 11;
        float[] mine = new float[n];
        Tensor t = new Tensor(new CpuStorage(DType.FLOAT32, mine), new int[]{n});
        t.close();
        Tensor next = CpuStorage.unsetTensor(new int[]{n}, DType.FLOAT32);
        assertNotSame(mine, CpuStorage.arrayOf(next), "the caller's own array stays the caller's");
    }

    @Test void shortArraysAreNotKept() {
        int n = 129;
        org.junit.jupiter.api.Assumptions.assumeTrue(FloatArrays.MIN_LENGTH > n, "every length is kept under kiln.cpu.poison");
        Tensor t = CpuStorage.unsetTensor(new int[]{n}, DType.FLOAT32);
        float[] a = (float[]) CpuStorage.arrayOf(t);
        t.close();
        assertNotSame(a, CpuStorage.arrayOf(CpuStorage.unsetTensor(new int[]{n}, DType.FLOAT32)));
    }
}

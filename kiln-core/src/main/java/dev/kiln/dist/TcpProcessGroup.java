package dev.kiln.dist;

import dev.kiln.DType;
import dev.kiln.Tensor;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * Collectives over the rendezvous connections, through rank 0 (a star): every rank sends its tensor to rank 0, which
 * sums in rank order (the same sum on every rank, run after run) and sends the result back. For CPU jobs and tests of
 * the data-parallel machinery on machines without GPUs; GPUs use NCCL. Values travel as float64. A rank whose
 * connection closes or that does not answer within the timeout fails the collective with an exception naming it.
 */
public final class TcpProcessGroup implements ProcessGroup {
    private static final System.Logger LOG = dev.kiln.Logging.logger(TcpProcessGroup.class);
    private final Rendezvous.Session session;
    private final DataInputStream[] in;
    private final DataOutputStream[] out;

    private TcpProcessGroup(Rendezvous.Session session, Duration timeout) throws IOException {
        this.session = session;
        int w = session.world();
        in = new DataInputStream[w];
        out = new DataOutputStream[w];
        for (int r = 0; r < w; r++) {
            if (r == session.rank() || (session.rank() != 0 && r != 0)) continue;
            Socket s = session.socket(r);
            s.setSoTimeout((int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
            s.setTcpNoDelay(true);
            in[r] = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
            out[r] = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
        }
    }

    /** This process's group: rank 0 hosts the rendezvous at MASTER_ADDR:MASTER_PORT, the others join it. */
    public static TcpProcessGroup connect(JobEnvironment job, Duration timeout) throws IOException {
        Rendezvous.Session s = job.rank() == 0
                ? Rendezvous.host(job.master(), job.token(), job.worldSize(), new byte[0], timeout, m -> LOG.log(System.Logger.Level.WARNING, m))
                : Rendezvous.join(job.master(), job.token(), job.rank(), job.worldSize(), timeout);
        return new TcpProcessGroup(s, timeout);
    }

    @Override public int rank() { return session.rank(); }

    @Override public int world() { return session.world(); }

    @Override public void allReduceSum(Tensor t) {
        double[] v = t.toDoubleArray();
        if (rank() == 0) {
            double[] sum = v.clone();
            for (int r = 1; r < world(); r++) {
                double[] other = receive(r, v.length);
                for (int i = 0; i < sum.length; i++) sum[i] += other[i];
            }
            for (int r = 1; r < world(); r++) send(r, sum);
            v = sum;
        } else {
            send(0, v);
            v = receive(0, v.length);
        }
        write(t, v);
    }

    @Override public void broadcast(Tensor t, int root) {
        if (root < 0 || root >= world()) throw new IllegalArgumentException("broadcast from rank " + root + " in a world of " + world());
        double[] v = t.toDoubleArray();
        if (rank() == 0) {
            if (root != 0) v = receive(root, v.length);
            for (int r = 1; r < world(); r++) if (r != root) send(r, v);
        } else if (rank() == root) {
            send(0, v);
            return;
        } else {
            v = receive(0, v.length);
        }
        write(t, v);
    }

    private static void write(Tensor t, double[] v) {
        Tensor.noGrad(() -> t.copyFrom(Tensor.of(v, t.shape()).to(t.dtype() == DType.FLOAT64 ? DType.FLOAT64 : t.dtype())));
    }

    private void send(int peer, double[] v) {
        try {
            ByteBuffer b = ByteBuffer.allocate(8 * v.length);
            b.asDoubleBuffer().put(v);
            out[peer].writeInt(v.length);
            out[peer].write(b.array());
            out[peer].flush();
        } catch (IOException e) {
            throw failed(peer, e);
        }
    }

    private double[] receive(int peer, int expected) {
        try {
            int n = in[peer].readInt();
            if (n != expected) throw new IllegalStateException("rank " + peer + " sent " + n + " values where rank " + rank() + " has " + expected
                    + " (the ranks' models or collectives differ)");
            byte[] raw = new byte[8 * n];
            in[peer].readFully(raw);
            double[] v = new double[n];
            ByteBuffer.wrap(raw).asDoubleBuffer().get(v);
            return v;
        } catch (IOException e) {
            throw failed(peer, e);
        }
    }

    private UncheckedIOException failed(int peer, IOException e) {
        String what = e instanceof SocketTimeoutException ? "did not answer in time" : "is gone (" + e.getClass().getSimpleName() + ")";
        return new UncheckedIOException("rank " + rank() + ": rank " + peer + " " + what + " during a collective", e);
    }

    @Override public void close() { session.close(); }
}

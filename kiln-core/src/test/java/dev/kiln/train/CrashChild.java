package dev.kiln.train;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;

/**
 * The child process of {@link CrashResumeTest}: trains the tiny run in {@code args[1]} on the data in {@code args[0]},
 * resuming from its newest checkpoint when it has one, with a checkpoint every step ({@code args[2]} "gpu": on cuda:0,
 * bf16, graphed, deterministic). Prints "training" once the first
 * step is about to run (the parent kills it at random moments after that) and "done" at the end.
 */
public final class CrashChild {
    private CrashChild() {}

    public static void main(String[] args) throws Exception {
        Path data = Path.of(args[0]), run = Path.of(args[1]);
        boolean gpu = args.length > 2 && args[2].equals("gpu");
        if (gpu) dev.kiln.cuda.Cuda.setDeterministic(true);
        TrainConfig cfg = CrashResumeTest.config(data, run, gpu);
        boolean resume = !TrainCheckpoint.checkpoints(run.resolve(TrainCheckpoint.DIR)).isEmpty();
        TrainListener announce = new TrainListener() {
            private boolean said;

            @Override public void epochStarted(String label, int batches) {
                if (said) return;
                said = true;
                System.out.println("training");
                System.out.flush();
            }
        };
        TrainRun.run(cfg, new PrintWriter(new StringWriter()), announce, null, false, CrashResumeTest.CHECKPOINTING,
                resume ? TrainCheckpoint.find(run) : null);
        System.out.println("done");
        System.out.flush();
    }
}

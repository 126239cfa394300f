package dev.kiln.train;

import dev.kiln.Generator;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.TensorDataset;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Model;
import dev.kiln.optim.Adam;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The MLP learns Fashion-MNIST: 6,000 training images, 2 epochs, then above 75% on 2,000 test images. */
class FashionMnistTrainingTest {
    @Test void mlpLearnsASubset() throws IOException {
        assumeTrue(Files.isDirectory(FashionMnist.DEFAULT_DIR), "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
        TensorDataset train = FashionMnist.load(FashionMnist.DEFAULT_DIR, true).head(6000);
        TensorDataset test = FashionMnist.load(FashionMnist.DEFAULT_DIR, false).head(2000);
        Model model = ModelZoo.MLP.build(new Generator(0));
        Trainer trainer = new Trainer(model, new CrossEntropyLoss(), new Adam(model.parameters(), 1e-3), null);
        try (DataLoader trainLoader = DataLoader.builder(train).batchSize(128).shuffle(0).workers(1).build();
             DataLoader testLoader = DataLoader.builder(test).batchSize(500).build()) {
            Evaluation before = Evaluation.of(model, testLoader);
            Trainer.TrainResult first = trainer.trainEpoch(trainLoader, "1");
            Trainer.TrainResult second = trainer.trainEpoch(trainLoader, "2");
            Evaluation after = Evaluation.of(model, testLoader);
            assertTrue(before.accuracy() < 0.3, "an untrained model guesses: " + before.accuracy());
            assertTrue(second.meanLoss() < first.meanLoss(), "loss falls: " + first.meanLoss() + " -> " + second.meanLoss());
            assertEquals(6000, first.samples());
            assertTrue(after.accuracy() > 0.75, "test accuracy " + after.accuracy());
            assertEquals(2000, after.samples());
            assertTrue(model.isTraining(), "evaluation restores the training mode");
        }
    }
}

"""The whole pipeline's tiny configuration, shared by the tests that run it (seconds of model work: most of a
run is its ten steps' start-up)."""

TINY_PIPELINE = ["--backbone", "tiny", "--random-weights", "--n-classes", "3", "--epochs", "2", "--n-shot", "5",
                 "--seed", "0"]

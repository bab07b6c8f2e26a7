import yaml

from pipelines.compile import compile_pipeline

COMPONENTS = {"fetch-dataset", "split-folds", "simulate-mixtures", "init-prompts", "tune-prompts", "evaluate-sdr",
              "audio-examples", "report-results"}
TASKS = COMPONENTS | {"evaluate-sdr-2"}  # the compiler names the second use of a component "-2"


def _spec(tmp_path):
    path = compile_pipeline(tmp_path / "dist" / "apt_uss_pipeline.yaml")
    return list(yaml.safe_load_all(path.read_text()))[0]


def test_components_wired_into_one_dag(tmp_path):
    spec = _spec(tmp_path)
    assert {c.removeprefix("comp-") for c in spec["components"]} == TASKS
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == TASKS
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["tune-prompts"] == {"fetch-dataset", "simulate-mixtures", "init-prompts"}
    # baseline and APT are two tasks of one component; only APT waits for tuning
    systems = {tasks[t]["inputs"]["parameters"]["system"]["runtimeValue"]["constant"]: t
               for t in ("evaluate-sdr", "evaluate-sdr-2")}
    assert "tune-prompts" not in deps[systems["baseline"]]
    assert deps[systems["apt"]] >= {"tune-prompts", "simulate-mixtures"}
    assert "separator_weights" in tasks[systems["apt"]]["inputs"]["artifacts"]
    executors = spec["deploymentSpec"]["executors"]
    assert executors["exec-evaluate-sdr"] == executors["exec-evaluate-sdr-2"]  # the same code and image
    assert deps["report-results"] >= {"evaluate-sdr", "evaluate-sdr-2", "tune-prompts", "audio-examples",
                                      "init-prompts"}
    assert deps["audio-examples"] >= {"evaluate-sdr", "evaluate-sdr-2", "tune-prompts"}
    assert {"embeddings", "examples"} <= set(tasks["report-results"]["inputs"]["artifacts"])
    # the run page shows results: headline Metrics and the HTML page are outputs of the report
    outputs = spec["components"]["comp-report-results"]["outputDefinitions"]["artifacts"]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["html_report"]["artifactType"]["schemaTitle"] == "system.HTML"
    # side effects (MLflow, S3, per-epoch state) are never skipped by the cache
    for name in ("report-results", "tune-prompts"):
        assert tasks[name]["cachingOptions"].get("enableCache", False) is False
    # a retried tuning task resumes from its per-epoch state
    assert tasks["tune-prompts"]["retryPolicy"]["maxRetryCount"] == 2


def test_tuning_requests_one_gpu_and_images_are_set(tmp_path):
    spec = _spec(tmp_path)
    executors = spec["deploymentSpec"]["executors"]
    tune = executors["exec-tune-prompts"]["container"]
    assert tune["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert tune["resources"]["accelerator"]["resourceCount"] == "1"
    for name, ex in executors.items():
        assert ex["container"]["image"].startswith("apt-uss")
        if name != "exec-tune-prompts":
            assert "accelerator" not in ex["container"].get("resources", {})
        # the project is in the image: no pip install at task start
        assert "pip install" not in " ".join(ex["container"]["command"])


def test_user_facing_parameters_are_pipeline_parameters(tmp_path):
    params = _spec(tmp_path)["root"]["inputDefinitions"]["parameters"]
    for name in ("n_shot", "seed", "epochs", "lr", "batch_size", "dataset", "dataset_uri", "n_classes",
                 "backbone", "sed_checkpoint_uri", "separator_checkpoint_uri", "tracking_uri", "artifact_uri",
                 "tune", "precision", "checkpoint_uri", "audio_examples_per_class"):
        assert name in params and "defaultValue" in params[name], name
    assert params["lr"]["defaultValue"] == 0.0003 and params["batch_size"]["defaultValue"] == 4
    assert params["n_shot"]["parameterType"] == "STRING"  # so 'full' is allowed

import yaml

from pipelines.compile import compile_pipeline

STEPS = {"fetch-dataset", "split-folds", "simulate-mixtures", "init-prompts", "tune-prompts", "evaluate-sdr"}


def _spec(tmp_path):
    path = compile_pipeline(tmp_path / "dist" / "apt_uss_pipeline.yaml")
    return list(yaml.safe_load_all(path.read_text()))[0]


def test_six_components_wired_into_one_dag(tmp_path):
    spec = _spec(tmp_path)
    assert {c.removeprefix("comp-") for c in spec["components"]} == STEPS
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == STEPS
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert deps["tune-prompts"] == {"fetch-dataset", "simulate-mixtures", "init-prompts"}
    assert deps["evaluate-sdr"] >= {"tune-prompts", "init-prompts", "simulate-mixtures"}
    assert tasks["evaluate-sdr"]["cachingOptions"].get("enableCache", False) is False


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
                 "backbone", "sed_checkpoint_uri", "separator_checkpoint_uri", "tracking_uri", "artifact_uri"):
        assert name in params and "defaultValue" in params[name], name
    assert params["lr"]["defaultValue"] == 0.0003 and params["batch_size"]["defaultValue"] == 4
    assert params["n_shot"]["parameterType"] == "STRING"  # so 'full' is allowed

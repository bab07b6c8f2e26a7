import pytest
import yaml

from pipelines.compile import compile_pipeline

COMPONENTS = {"validate-parameters", "fetch-dataset", "split-folds", "simulate-mixtures", "init-prompts",
              "tune-prompts", "evaluate-sdr", "audio-examples", "report-results"}
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
    # the tasks that open the MLflow run know their Kubeflow run (its id, not its display name: a clone may share it)
    for name in ("report-results", "tune-prompts"):
        given = tasks[name]["inputs"]["parameters"]["kfp_run_id"]["runtimeValue"]["constant"]
        assert given == "{{$.pipeline_job_uuid}}", name


def _platform(tmp_path):
    path = compile_pipeline(tmp_path / "dist" / "apt_uss_pipeline.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 2, "the kfp-kubernetes platform spec is the YAML's second document"
    return docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_tuning_requests_gpus_tolerates_their_taint_and_images_are_set(tmp_path):
    spec, platform = _platform(tmp_path)
    executors = spec["deploymentSpec"]["executors"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    tune = executors["exec-tune-prompts"]["container"]
    assert tune["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    # the GPU count is a run parameter (default 1), as are the tolerations and node selector
    assert "tune_gpus" in tune["resources"]["accelerator"]["resourceCount"]
    # Kubeflow's driver reads a channel's accelerator count as a string value only: a number parameter gives no GPU
    assert (params["tune_gpus"]["defaultValue"], params["tune_gpus"]["parameterType"]) == ("1", "STRING")
    assert platform["exec-tune-prompts"]["tolerations"][0]["tolerationJson"]["componentInputParameter"] == \
        "gpu_tolerations"
    assert params["gpu_tolerations"]["defaultValue"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                         "effect": "NoSchedule"}]
    assert platform["exec-tune-prompts"]["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"] == \
        "gpu_node_selector"
    assert params["gpu_node_selector"]["defaultValue"] == {}
    # the steps that run the backbone over many clips ask for model_gpus (demo 0, paper 1) and tolerate the taint
    model_steps = {"exec-init-prompts", "exec-evaluate-sdr", "exec-evaluate-sdr-2", "exec-audio-examples"}
    assert (params["model_gpus"]["defaultValue"], params["model_gpus"]["parameterType"]) == ("0", "STRING")
    for name in model_steps:
        assert "model_gpus" in executors[name]["container"]["resources"]["accelerator"]["resourceCount"], name
        assert platform[name]["tolerations"][0]["tolerationJson"]["componentInputParameter"] == "gpu_tolerations"
        assert "nodeSelector" not in platform[name]  # a CPU pod (model_gpus 0) may run on any node
    # and each is told what its pod asked for, so a pod that asked for GPUs and sees none warns in its log
    tasks = spec["root"]["dag"]["tasks"]
    for name in model_steps:
        given = tasks[name.removeprefix("exec-")]["inputs"]["parameters"]["gpus"]
        assert given["componentInputParameter"] == "model_gpus", name
    for name, ex in executors.items():
        assert ex["container"]["image"].startswith("apt-uss")
        if name not in model_steps | {"exec-tune-prompts"}:
            assert "accelerator" not in ex["container"].get("resources", {})
            assert "tolerations" not in platform[name]
        # every step asks for CPU and memory, with a memory limit
        res = ex["container"]["resources"]
        assert {"resourceCpuRequest", "resourceMemoryRequest", "resourceMemoryLimit"} <= set(res), name
        # the project is in the image: no pip install at task start
        assert "pip install" not in " ".join(ex["container"]["command"])


def test_credentials_reach_every_step_from_a_secret_never_the_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sentinel-secret-value")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sentinel-key-id")
    spec, platform = _platform(tmp_path)
    text = (tmp_path / "dist" / "apt_uss_pipeline.yaml").read_text()
    assert "sentinel" not in text
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["credentials_secret"]["defaultValue"] == "apt-uss-credentials"
    assert params["config_map"]["defaultValue"] == "apt-uss-config"
    assert set(platform) == {f"exec-{t}" for t in TASKS}
    for name, config in platform.items():
        (secret,) = config["secretAsEnv"]
        assert secret["secretNameParameter"]["componentInputParameter"] == "credentials_secret"
        assert {(k["secretKey"], k["envVar"]) for k in secret["keyToEnv"]} == {
            ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")}
        (cm,) = config["configMapAsEnv"]
        assert cm["configMapNameParameter"]["componentInputParameter"] == "config_map"
        assert {k["envVar"] for k in cm["keyToEnv"]} == {"AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
                                                         "MLFLOW_TRACKING_URI"}
    # no parameter carries a credential
    assert not [p for p in params if "key" in p.lower() or "password" in p.lower() or "token" in p.lower()]


def test_network_steps_retry_with_backoff_and_pure_steps_do_not(tmp_path):
    tasks = _spec(tmp_path)["root"]["dag"]["tasks"]
    pure = {"validate-parameters", "split-folds", "simulate-mixtures"}
    for name in TASKS - pure:
        policy = tasks[name]["retryPolicy"]
        assert policy["maxRetryCount"] == 2 and policy["backoffFactor"] == 2.0, name
        assert policy["backoffDuration"] == "30s"
    for name in pure:
        assert "retryPolicy" not in tasks[name]


def _retried_tasks(path) -> tuple[set, set]:
    """(tasks with a retry policy, tasks without one) over every DAG of a compiled pipeline (loops included)."""
    spec = list(yaml.safe_load_all(path.read_text()))[0]
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    tasks = {name: task for dag in dags for name, task in dag["tasks"].items()}
    return {n for n, t in tasks.items() if "retryPolicy" in t}, {n for n, t in tasks.items() if "retryPolicy" not in t}


def test_the_local_runners_pipelines_have_no_retries(tmp_path):
    """KFP's local runner honours a retry policy: with one, a bad input there would wait out its backoff first."""
    from kfp import compiler

    from pipelines.run_local import LOCAL_PIPELINE
    from pipelines.sweep_pipeline import build_sweep_pipeline

    for name, pipeline in [("run", LOCAL_PIPELINE), ("sweep", build_sweep_pipeline(retries=False))]:
        out = tmp_path / f"{name}.yaml"
        compiler.Compiler().compile(pipeline, str(out))
        retried, others = _retried_tasks(out)
        assert not retried and "tune-prompts" in others, name
    # The cluster's sweep keeps them on the steps that touch the network or hold a GPU, inside its loop too.
    sweep = compile_pipeline(tmp_path / "sweep-cluster.yaml", pipeline="sweep")
    retried, others = _retried_tasks(sweep)
    assert retried == {"plan-sweep", "fetch-dataset", "embed-training-clips", "tune-prompts", "evaluate-sdr",
                       "evaluate-sdr-2", "aggregate-sweep"}
    assert {"split-folds", "simulate-mixtures", "prompts-from-embeddings", "score-cell"} <= others


def test_image_names_and_tag_are_compile_time_settings(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "p.yaml"
    env = {**__import__("os").environ, "APT_USS_IMAGE": "registry.example.com/team/apt-uss:1.2.3",
           "APT_USS_GPU_IMAGE": "registry.example.com/team/apt-uss-gpu:1.2.3"}
    subprocess.run([sys.executable, "-m", "pipelines.compile", "--out", str(out)], check=True, env=env,
                   cwd=Path(__file__).resolve().parents[1], capture_output=True)
    executors = yaml.safe_load_all(out.read_text()).__next__()["deploymentSpec"]["executors"]
    images = {name: ex["container"]["image"] for name, ex in executors.items()}
    # the steps that run the backbone use the GPU image (a pod gets a GPU by run parameter), the others the CPU one
    for name in ("exec-tune-prompts", "exec-init-prompts", "exec-evaluate-sdr", "exec-evaluate-sdr-2",
                 "exec-audio-examples"):
        assert images.pop(name) == "registry.example.com/team/apt-uss-gpu:1.2.3", name
    assert set(images.values()) == {"registry.example.com/team/apt-uss:1.2.3"}


def test_user_facing_parameters_are_pipeline_parameters(tmp_path):
    params = _spec(tmp_path)["root"]["inputDefinitions"]["parameters"]
    for name in ("n_shot", "seed", "epochs", "lr", "lr_schedule", "loss_function", "crop_rule", "batch_size",
                 "dataset", "dataset_uri", "n_classes", "backbone", "sed_checkpoint_uri", "separator_checkpoint_uri",
                 "tracking_uri", "artifact_uri", "tune", "precision", "checkpoint_uri", "audio_examples_per_class"):
        assert name in params and "defaultValue" in params[name], name
    assert params["n_shot"]["parameterType"] == "STRING"  # so 'full' is allowed


@pytest.mark.parametrize("pipeline", ["run", "sweep"])
@pytest.mark.parametrize("profile", ["demo", "paper"])
def test_the_compiled_defaults_are_the_profiles_and_every_spec_parameter_is_one(tmp_path, profile, pipeline):
    """A Kubeflow UI run starts from the compiled defaults: the demo profile's (what the shipped weights need)
    unless the pipeline was compiled with PROFILE=paper; each parameter is described from the spec. The same
    holds for the sweep pipeline and its parameters."""
    from apt_uss.params import spec
    from pipelines.compile import compile_pipeline

    out = compile_pipeline(tmp_path / f"{profile}.yaml", profile, pipeline)
    params = next(yaml.safe_load_all(out.read_text()))["root"]["inputDefinitions"]["parameters"]
    assert set(params) == {q.name for q in spec.parameters_of(pipeline)}
    kinds = {str: "STRING", int: "NUMBER_INTEGER", float: "NUMBER_DOUBLE", bool: "BOOLEAN", list: "LIST",
             dict: "STRUCT"}
    for q in spec.parameters_of(pipeline):
        name, value = q.name, spec.defaults(profile)[q.name]
        assert params[name]["parameterType"] == kinds[spec.BY_NAME[name].type], name
        assert params[name]["defaultValue"] == value, name  # KFP writes integers as 20.0, which equals 20
        assert params[name]["description"], name
    chosen = spec.PROFILES[profile]
    assert {k: params[k]["defaultValue"] for k in chosen} == chosen


def test_one_version_names_the_images_everywhere():
    """The package version is the image tag the pipeline, `make images` and the chart default to:
    a release that bumps one and not the others would run or push images nobody built."""
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    components = (root / "components" / "apt_uss_components.py").read_text()
    assert f'"apt-uss:{version}"' in components and f'"apt-uss-gpu:{version}"' in components
    assert re.search(rf"^TAG\s*\?=\s*{re.escape(version)}$", (root / "images" / "images.mk").read_text(), re.M)
    chart = yaml.safe_load((root / "charts" / "apt-uss" / "Chart.yaml").read_text())
    values = yaml.safe_load((root / "charts" / "apt-uss" / "values.yaml").read_text())
    assert chart["appVersion"] == version and values["image"]["tag"] == version

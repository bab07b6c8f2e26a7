"""The Helm chart charts/apt-uss: lints, renders offline, and every manifest validates (strict).

Helm 4 runs in-process through PyPI's ``helm-python-sdk`` (``helm_python``: lint and render, no
cluster, no helm binary); ``kubernetes-validate`` checks each rendered object against the bundled
Kubernetes OpenAPI schemas in strict mode (unknown fields are errors). `make setup` installs
both (requirements-dev.lock).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

# Both come with make setup (requirements-dev.lock): a missing one is a broken set-up, not a skip.
import helm_python as helm  # noqa: E402
import kubernetes_validate  # noqa: E402
import pytest
import yaml  # noqa: E402

from apt_uss.tools.cluster import CONFIG_KEYS

CHART = Path(__file__).resolve().parents[1] / "charts" / "apt-uss"
KUBE_VERSION = "1.30.0"
RELEASE = "apt-uss"
NAMESPACE = "apt-uss"

ACCESS_KEY = "AKIATESTKEY7Q2M"
SECRET_KEY = "test-secret-Zq81xWv0pLk3"
CREDS = {"credentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}}

# External PostgreSQL, existing S3 Secret, no upload Job, other namespace, registry and resources.
EXTERNAL = {
    "pipelineNamespace": "kubeflow-user-example-com",
    "image": {"registry": "registry.example.com/team/", "repository": "apt-uss", "tag": "0.2.0",
              "pullPolicy": "Always"},
    "imagePullSecrets": ["regcred"],
    "credentials": {"existingSecret": "team-s3"},
    "s3": {"endpoint": "https://s3.eu-west-1.example.com", "region": "eu-west-1", "bucket": "team-bucket",
           "runsPrefix": "apt/runs", "mlflowArtifactsPrefix": "apt/mlflow"},
    "postgresql": {"enabled": False},
    "externalPostgresql": {"host": "db.example.com", "port": 6543, "database": "tracking",
                           "username": "mlflow_app", "existingSecret": "team-db",
                           "existingSecretPasswordKey": "pw", "sslMode": "require"},
    "mlflow": {"replicas": 2, "workers": 4, "extraAllowedHosts": ["mlflow.example.com"],
               "extraArgs": ["--cors-allowed-origins", "https://ui.example.com"],
               "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
               "nodeSelector": {"kubernetes.io/os": "linux"},
               "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
               "service": {"type": "ClusterIP", "port": 80, "annotations": {"example.com/team": "audio"}}},
    "pipelineUpload": {"enabled": False},
    "tests": {"enabled": False},
}

# Multi-user KFP: bundled PostgreSQL with a given password, keys from values, the Job authenticates
# with a projected ServiceAccount token and may upload in the profile namespace.
MULTIUSER = {
    **CREDS,
    "pipelineNamespace": "kubeflow-user-example-com",
    "postgresql": {"enabled": True, "auth": {"password": "given-db-password-9x"},
                   "persistence": {"size": "20Gi", "storageClass": "fast-ssd"}},
    "kfp": {"host": "http://ml-pipeline.kubeflow.svc.cluster.local:8888", "namespace": "kubeflow-user-example-com",
            "useServiceAccountToken": True, "tokenSecret": {"name": "kfp-token", "key": "token"}},
    "pipelineUpload": {"enabled": True, "pipelineName": "apt-uss-team", "rbac": {"create": True}},
}

SCENARIOS = {"default": CREDS, "external": EXTERNAL, "multiuser": MULTIUSER}


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory) -> Path:
    """A copy of the chart with the pipeline compiled into files/, as `make pipeline-compile
    PIPELINE_YAML=charts/apt-uss/files/apt_uss_pipeline.yaml` puts it (that file is not in git)."""
    from pipelines.compile import compile_pipeline

    copy_dir = tmp_path_factory.mktemp("chart") / "apt-uss"
    shutil.copytree(CHART, copy_dir, ignore=shutil.ignore_patterns("apt_uss_pipeline.yaml"))
    compile_pipeline(copy_dir / "files" / "apt_uss_pipeline.yaml")
    return copy_dir


def render(chart_dir: Path, values: dict | None, namespace: str = NAMESPACE) -> dict[str, str]:
    with helm.Chart.load(chart_dir) as chart:
        return chart.render(values, name=RELEASE, namespace=namespace, is_install=True)


def documents(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def find(docs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
            and (namespace is None or d["metadata"].get("namespace") == namespace)]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    specs = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]))
        elif d["kind"] == "Pod":
            specs.append((f"Pod/{d['metadata']['name']}", d["spec"]))
    return specs


def mlflow_container(docs: list[dict]) -> dict:
    deployment = one(docs, "Deployment", f"{RELEASE}-mlflow")
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow")


def arg(container: dict, flag: str) -> str:
    args = container["args"]
    assert flag in args, f"{flag} not in {args}"
    return args[args.index(flag) + 1]


def env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(scope="module")
def rendered(chart_dir) -> dict[str, list[dict]]:
    return {name: documents(render(chart_dir, values)) for name, values in SCENARIOS.items()}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_chart_lints_strict(chart_dir, scenario):
    report = helm.lint(chart_dir, SCENARIOS[scenario], strict=True, namespace=NAMESPACE,
                       kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_manifest_validates_strict(rendered, scenario):
    docs = rendered[scenario]
    assert docs
    for doc in docs:
        label = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{scenario}: {label} is not a valid Kubernetes {KUBE_VERSION} object: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{scenario}: {label}: {exc.message}")
        assert doc["metadata"].get("namespace"), f"{label} has no namespace"


def test_default_objects(rendered):
    docs = rendered["default"]
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == sorted([
        "ConfigMap/apt-uss-config", "ConfigMap/apt-uss-pipeline", "Deployment/apt-uss-mlflow",
        "Job/apt-uss-pipeline-upload", "Pod/apt-uss-test-mlflow", "Secret/apt-uss-credentials",
        "Secret/apt-uss-postgresql", "Service/apt-uss-mlflow", "Service/apt-uss-postgresql",
        "Service/apt-uss-postgresql-hl", "ServiceAccount/apt-uss-pipeline-upload", "StatefulSet/apt-uss-postgresql",
    ])


def test_mlflow_server_settings_mirror_the_local_server(rendered):
    c = mlflow_container(rendered["default"])
    assert c["image"] == "apt-uss:0.1.0"
    assert c["command"] == ["/opt/venv/bin/mlflow"] and c["args"][0] == "server"
    assert arg(c, "--backend-store-uri") == (
        f"postgresql+psycopg2://mlflow@apt-uss-postgresql.{NAMESPACE}.svc.cluster.local:5432/mlflow")
    assert arg(c, "--artifacts-destination") == "s3://apt-uss/mlflow-artifacts"
    assert arg(c, "--workers") == "2"
    assert arg(c, "--host") == "0.0.0.0" and arg(c, "--port") == "5000"
    assert "--no-serve-artifacts" not in c["args"] and "--default-artifact-root" not in c["args"]
    hosts = arg(c, "--allowed-hosts").split(",")
    for host in ("apt-uss-mlflow", "apt-uss-mlflow:5000", f"apt-uss-mlflow.{NAMESPACE}",
                 f"apt-uss-mlflow.{NAMESPACE}.svc.cluster.local:5000", "localhost:*"):
        assert host in hosts, (host, hosts)
    e = env(c)
    assert e["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "apt-uss-postgresql", "key": "password"}
    assert e["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://seaweedfs.kubeflow:8333"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert e[key]["valueFrom"]["secretKeyRef"] == {"name": "apt-uss-credentials", "key": key}
    service = one(rendered["default"], "Service", "apt-uss-mlflow")
    assert service["spec"]["ports"][0]["port"] == 5000


def test_mlflow_on_external_postgresql(rendered):
    docs = rendered["external"]
    assert not find(docs, "StatefulSet") and not find(docs, "Secret")
    c = mlflow_container(docs)
    assert c["image"] == "registry.example.com/team/apt-uss:0.2.0" and c["imagePullPolicy"] == "Always"
    assert arg(c, "--backend-store-uri") == "postgresql+psycopg2://mlflow_app@db.example.com:6543/tracking?sslmode=require"
    assert arg(c, "--artifacts-destination") == "s3://team-bucket/apt/mlflow"
    assert arg(c, "--workers") == "4"
    assert arg(c, "--cors-allowed-origins") == "https://ui.example.com"
    hosts = arg(c, "--allowed-hosts").split(",")
    assert "mlflow.example.com" in hosts and f"apt-uss-mlflow.{NAMESPACE}.svc.cluster.local:80" in hosts
    e = env(c)
    assert e["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "team-db", "key": "pw"}
    assert e["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "team-s3"
    assert c["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    deployment = one(docs, "Deployment", "apt-uss-mlflow")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["initContainers"][0]["command"][-2:] == ["db.example.com", "6543"]


def test_configmap_and_secret_land_in_the_pipeline_namespace(rendered):
    for scenario, ns in (("default", NAMESPACE), ("external", "kubeflow-user-example-com"),
                         ("multiuser", "kubeflow-user-example-com")):
        cm = one(rendered[scenario], "ConfigMap", "apt-uss-config")
        assert cm["metadata"]["namespace"] == ns, scenario
        assert set(cm["data"]) == set(CONFIG_KEYS)  # exactly what the compiled pipeline maps into the pods
    default = one(rendered["default"], "ConfigMap", "apt-uss-config")["data"]
    assert default == {"AWS_ENDPOINT_URL": "http://seaweedfs.kubeflow:8333", "AWS_DEFAULT_REGION": "us-east-1",
                       "MLFLOW_TRACKING_URI": f"http://apt-uss-mlflow.{NAMESPACE}.svc.cluster.local:5000"}
    external = one(rendered["external"], "ConfigMap", "apt-uss-config")["data"]
    # The tracking URI names the Service in the release namespace, not the pipeline's namespace.
    assert external["MLFLOW_TRACKING_URI"] == f"http://apt-uss-mlflow.{NAMESPACE}.svc.cluster.local:80"
    assert external["AWS_DEFAULT_REGION"] == "eu-west-1"

    secrets = find(rendered["default"], "Secret", "apt-uss-credentials")
    assert [s["metadata"]["namespace"] for s in secrets] == [NAMESPACE]
    assert secrets[0]["stringData"] == {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    # Another pipeline namespace: the steps' copy there, MLflow's in the release namespace.
    secrets = find(rendered["multiuser"], "Secret", "apt-uss-credentials")
    assert sorted(s["metadata"]["namespace"] for s in secrets) == sorted([NAMESPACE, "kubeflow-user-example-com"])


def test_no_secret_value_outside_secrets(rendered):
    for scenario, docs in rendered.items():
        for doc in docs:
            if doc["kind"] == "Secret":
                continue
            text = yaml.safe_dump(doc)
            for value in (ACCESS_KEY, SECRET_KEY, "given-db-password-9x"):
                assert value not in text, f"{scenario}: {doc['kind']}/{doc['metadata']['name']} holds a secret value"


def test_containers_are_hardened_and_sized(rendered):
    for scenario, docs in rendered.items():
        for label, spec in pod_specs(docs):
            pod_sc = spec.get("securityContext", {})
            assert spec.get("automountServiceAccountToken") is False, label
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for c in spec.get("initContainers", []) + spec["containers"]:
                where = f"{scenario}: {label} container {c['name']}"
                requests = c.get("resources", {}).get("requests", {})
                assert "cpu" in requests and "memory" in requests, where
                assert "memory" in c["resources"].get("limits", {}), where
                sc = c.get("securityContext", {})
                assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
                assert (sc.get("runAsUser") or pod_sc.get("runAsUser")) not in (None, 0), where
                assert sc.get("readOnlyRootFilesystem") is True, where
                assert sc.get("allowPrivilegeEscalation") is False, where
                assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
                mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
                assert "/tmp" in mounts and "emptyDir" in volumes[mounts["/tmp"]], where
            assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", label


def test_postgresql_statefulset(rendered):
    docs = rendered["default"]
    sts = one(docs, "StatefulSet", "apt-uss-postgresql")
    spec = sts["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsUser"] == 999 and spec["securityContext"]["fsGroup"] == 999
    c = spec["containers"][0]
    assert c["image"] == "docker.io/library/postgres:15"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["exec"]["command"][0] == "pg_isready", probe
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/var/run/postgresql"]]
    assert mounts["/var/lib/postgresql/data"] == "data"
    assert env(c)["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    assert env(c)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "apt-uss-postgresql", "key": "password"}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert sts["spec"]["serviceName"] == "apt-uss-postgresql-hl"
    # No password in values: one is generated, and kept past helm uninstall (the PVC outlives it).
    secret = one(docs, "Secret", "apt-uss-postgresql")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    import base64
    assert len(base64.b64decode(secret["data"]["password"])) == 32

    multi = rendered["multiuser"]
    claim = one(multi, "StatefulSet")["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["storageClassName"] == "fast-ssd" and claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert base64.b64decode(one(multi, "Secret", "apt-uss-postgresql")["data"]["password"]) == b"given-db-password-9x"


def test_long_running_containers_have_probes(rendered):
    for scenario, docs in rendered.items():
        for d in docs:
            if d["kind"] in ("Deployment", "StatefulSet"):
                for c in d["spec"]["template"]["spec"]["containers"]:
                    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                        assert probe in c, f"{scenario}: {d['metadata']['name']}/{c['name']} lacks {probe}"
    c = mlflow_container(rendered["default"])
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}


def test_upload_hook_job(rendered, chart_dir):
    docs = rendered["default"]
    job = one(docs, "Job", "apt-uss-pipeline-upload")
    notes = job["metadata"]["annotations"]
    assert set(notes["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
    assert "before-hook-creation" in notes["helm.sh/hook-delete-policy"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (c,) = spec["containers"]
    assert c["image"] == "apt-uss:0.1.0"
    assert c["command"] == ["python3", "-m", "apt_uss", "pipeline-upload",
                            "--host", "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
                            "--package", "/pipeline/apt_uss_pipeline.yaml", "--pipeline-name", "apt-uss"]
    assert "KFP_TOKEN" not in env(c)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/pipeline"]]["configMap"]["name"] == "apt-uss-pipeline"
    package = one(docs, "ConfigMap", "apt-uss-pipeline")["data"]["apt_uss_pipeline.yaml"]
    assert package == (chart_dir / "files" / "apt_uss_pipeline.yaml").read_text()
    assert spec["serviceAccountName"] == "apt-uss-pipeline-upload"

    multi = rendered["multiuser"]
    job = one(multi, "Job")
    spec = job["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["command"][c["command"].index("--namespace") + 1] == "kubeflow-user-example-com"
    assert c["command"][c["command"].index("--pipeline-name") + 1] == "apt-uss-team"
    token_file = c["command"][c["command"].index("--token-file") + 1]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    projected = {v["name"]: v for v in spec["volumes"]}[mounts[str(Path(token_file).parent)]]["projected"]
    assert projected["sources"][0]["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
    assert env(c)["KFP_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "kfp-token", "key": "token"}
    binding = one(multi, "RoleBinding")
    assert binding["metadata"]["namespace"] == "kubeflow-user-example-com"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "apt-uss-pipeline-upload", "namespace": NAMESPACE}]

    external = rendered["external"]
    assert not find(external, "Job") and not find(external, "ConfigMap", "apt-uss-pipeline")
    assert not find(external, "ServiceAccount") and not find(external, "Pod")


def test_the_upload_job_gets_the_compiled_pipeline_whole(chart_dir, rendered):
    package = one(rendered["default"], "ConfigMap", "apt-uss-pipeline")["data"]["apt_uss_pipeline.yaml"]
    assert package.strip() == (chart_dir / "files" / "apt_uss_pipeline.yaml").read_text().strip()
    assert len(package.encode()) < 1024 * 1024  # a ConfigMap holds at most 1 MiB
    spec, platform = yaml.safe_load_all(package)  # the IR and the kfp-kubernetes settings, both intact
    assert spec["pipelineInfo"]["name"] == "apt-uss"
    assert "exec-tune-prompts" in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def _render_error(chart_dir, values) -> str:
    with pytest.raises(helm.HelmError) as info:
        render(chart_dir, values)
    return str(info.value)


def test_rendering_without_credentials_fails_clearly(chart_dir):
    for values in (None, {"credentials": {"accessKeyId": ACCESS_KEY}},
                   {"credentials": {"secretAccessKey": SECRET_KEY}}):
        message = _render_error(chart_dir, values)
        assert "S3 credentials are required" in message and "credentials.existingSecret" in message, message
    defaults = helm.Chart.load(chart_dir)
    try:
        assert defaults.values["credentials"]["accessKeyId"] == ""
        assert defaults.values["credentials"]["secretAccessKey"] == ""
        assert defaults.values["postgresql"]["auth"]["password"] == ""
    finally:
        defaults.close()


def test_external_postgresql_needs_host_and_secret(chart_dir):
    values = copy.deepcopy(EXTERNAL)
    values["externalPostgresql"]["host"] = ""
    assert "externalPostgresql.host is required" in _render_error(chart_dir, values)
    values = copy.deepcopy(EXTERNAL)
    values["externalPostgresql"]["existingSecret"] = ""
    assert "externalPostgresql.existingSecret" in _render_error(chart_dir, values)


def test_schema_rejects_unknown_and_mistyped_values(chart_dir):
    for bad in ({**CREDS, "mlflow": {"wrokers": 2}}, {**CREDS, "mlflow": {"workers": "two"}},
                {**CREDS, "s3": {"endpoint": "seaweedfs:8333"}}, {**CREDS, "pipelineNamespace": "Not_A_Namespace"}):
        with pytest.raises(helm.HelmError):
            render(chart_dir, bad)


def test_missing_pipeline_package_fails_unless_upload_disabled(tmp_path):
    chart = tmp_path / "apt-uss"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("apt_uss_pipeline.yaml"))
    assert "make pipeline-compile" in _render_error(chart, CREDS)
    docs = documents(render(chart, {**CREDS, "pipelineUpload": {"enabled": False}}))
    assert not find(docs, "Job")

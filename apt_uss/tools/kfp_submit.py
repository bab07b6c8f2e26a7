"""Upload the compiled pipeline to Kubeflow Pipelines and start runs of it, through ``kfp.Client`` (REST API v2beta1).

``connect`` -> ``upload_pipeline`` (a new pipeline, or a new version of the pipeline of that name in the
namespace) -> ``submit_run`` (get-or-create the experiment, then a run of that version with every parameter).

Every failure is one ``AptUssError`` line: a host that does not answer (named without credentials), a token
the API rejects, or the API's HTTP status and message. The bearer token (``KFP_TOKEN``, or a file such as a
projected service-account token) goes in the Authorization header only; it is never printed or logged.

kfp.Client's own health check retries 5 times, 5 s apart, and its connections have no timeout; here the
health check is one attempt, connections time out after ``CONNECT_TIMEOUT_S`` and are not retried, so a
wrong host fails in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import kfp
import kfp_server_api
import urllib3
import yaml

from apt_uss.errors import AptUssError

log = logging.getLogger("apt_uss.tools.kfp_submit")

TOKEN_ENV = "KFP_TOKEN"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
HEALTHZ_PATH = "/apis/v2beta1/healthz"


def display_host(host: str) -> str:
    """The host URL as it may appear in messages: no user:password, query or fragment."""
    parts = urlsplit(host)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")


def check_host(host: str) -> str:
    host = (host or "").strip().rstrip("/")
    if not host:
        raise AptUssError("no KFP host given: pass --host (make: KFP_HOST=), e.g. http://127.0.0.1:8080 "
                          "after kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80")
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AptUssError(f"KFP host {display_host(host)!r} is not an http(s) URL: use e.g. "
                          "http://127.0.0.1:8080 or https://kubeflow.example.com/pipeline")
    return host


def resolve_token(token: str | None = None, token_file: str | os.PathLike | None = None) -> str | None:
    """The bearer token: ``token``, else the content of ``token_file``, else ``$KFP_TOKEN``; None without one."""
    if token:
        return token.strip()
    if token_file:
        path = Path(token_file)
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise AptUssError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
        if not value:
            raise AptUssError(f"the token file {path} is empty")
        return value
    return (os.environ.get(TOKEN_ENV) or "").strip() or None


class _Client(kfp.Client):
    """kfp.Client with a fast, single health check and no writes to ``~/.config/kfp/context.json``."""

    def __init__(self, host: str, namespace: str, token: str | None):
        self.apt_host = display_host(host)
        self._apt_token = token
        self._apt_healthz = None
        # kfp treats namespace="kubeflow" as "not given"; the given namespace is set after construction.
        super().__init__(host=host, namespace=namespace or "kubeflow", existing_token=token)
        if namespace:
            self._context_setting["namespace"] = namespace

    def set_user_namespace(self, namespace: str) -> None:
        # The stock method also persists the namespace to ~/.config/kfp/context.json (read-only in many pods).
        self._context_setting["namespace"] = namespace

    def get_kfp_healthz(self, sleep_duration: int = 5) -> kfp_server_api.V2beta1GetHealthzResponse:
        """One attempt (the stock method retries 5 times, 5 s apart); the answer must be the API's JSON."""
        if self._apt_healthz is None:
            _limit_waits(self._healthz_api.api_client)
            with _api_errors(self.apt_host, self._apt_token, "the health check"):
                raw = self._healthz_api.healthz_service_get_healthz(_preload_content=False)
            kind = raw.headers.get("Content-Type", "")
            try:
                data = json.loads(raw.data or b"{}")
            except ValueError:
                data = None
            if "json" not in kind or not isinstance(data, dict):
                raise AptUssError(
                    f"the KFP API at {self.apt_host} answered {HEALTHZ_PATH} with {kind or 'no content type'}, "
                    "not JSON (a login page or another web site?): check the host (in Kubeflow it ends in "
                    f"/pipeline) and the token (set {TOKEN_ENV})")
            self._apt_healthz = kfp_server_api.V2beta1GetHealthzResponse(multi_user=data.get("multi_user"),
                                                                        pipeline_store=data.get("pipeline_store"))
        return self._apt_healthz


def _limit_waits(api_client) -> None:
    """Short connect timeout and no connection retries for every request of this client."""
    pool = api_client.rest_client.pool_manager
    pool.connection_pool_kw["timeout"] = urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S)
    pool.connection_pool_kw["retries"] = urllib3.Retry(total=2, connect=0, read=1, redirect=3, status=0)
    pool.clear()


def _unreachable_reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "its name does not resolve"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        m = re.search(r"\[Errno -?\d+\]\s*([^'\"()]+)", str(reason))
        return m.group(1).strip().lower() if m else "no connection"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return f"no connection within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return f"no reply within {READ_TIMEOUT_S:g} s"
    text = str(reason).strip().splitlines()
    return re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text[0] if text else type(reason).__name__)[:200]


def _server_message(exc: kfp_server_api.ApiException) -> str:
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
    message = ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = str(data.get("message") or data.get("error_message") or data.get("error") or "")
    elif body and not body.lstrip().startswith("<"):
        message = body
    message = " ".join(message.split())
    return message[:300] or str(exc.reason or "").strip()


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


@contextlib.contextmanager
def _api_errors(host: str, token: str | None, what: str):
    """Turn kfp / HTTP failures into one AptUssError line; keep kfp.Client's link printing out of stdout."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    except AptUssError:
        raise
    except kfp_server_api.ApiException as exc:
        status = exc.status or 0
        message = _server_message(exc)
        if status in (401, 403):
            given = (f"rejected the token (HTTP {status}" if token
                     else f"refused the request without a token (HTTP {status}")
            detail = f": {message})" if message and status == 403 else ")"
            text = f"the KFP API at {host} {given}{detail} during {what}: set {TOKEN_ENV} to a valid token"
        elif status == 0:
            text = f"{what}: could not talk to the KFP API at {host}: {message or 'no answer'}"
        else:
            text = f"{what} failed: the KFP API at {host} answered HTTP {status}: {message or 'no message'}"
            if status == 404 and what == "the health check":
                text += f" (no {HEALTHZ_PATH} there: is this the KFP API? In Kubeflow the host ends in /pipeline)"
        raise AptUssError(_scrub(text, token)) from None
    except urllib3.exceptions.HTTPError as exc:
        text = (f"the KFP host {host} does not answer ({_unreachable_reason(exc)}) during {what}: "
                "check --host (KFP_HOST) and that the API is reachable from here")
        raise AptUssError(_scrub(text, token)) from None
    except ValueError as exc:  # kfp.Client's own checks, e.g. two pipelines or experiments of one name
        raise AptUssError(_scrub(f"{what}: {exc}", token)) from None
    finally:
        for line in printed.getvalue().splitlines():
            log.debug("kfp: %s", line)


def _call(client, what: str):
    return _api_errors(getattr(client, "apt_host", None) or display_host(client._existing_config.host),
                       getattr(client, "_apt_token", None), what)


def connect(host: str, namespace: str = "", token: str | None = None,
            token_file: str | os.PathLike | None = None) -> kfp.Client:
    """A kfp.Client for ``host`` whose API has answered its health check.

    The token is ``token``, else ``token_file``'s content, else ``$KFP_TOKEN``. On a multi-user deployment
    a namespace is required (kfp.Client's in-pod default, the service account's namespace, also counts).
    """
    host = check_host(host)
    token = resolve_token(token, token_file)
    shown = display_host(host)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "This client only works with KFP v2.0.0-beta.2 and later"
        with _api_errors(shown, token, "connecting"):
            client = _Client(host, namespace, token)
    healthz = client.get_kfp_healthz()
    if healthz.multi_user and not client.get_user_namespace():
        raise AptUssError(f"the KFP deployment at {shown} is multi-user: give the namespace to use "
                          "(--namespace, make: KFP_NAMESPACE=)")
    log.info("KFP API at %s answers (multi-user: %s, namespace: %s)", shown, bool(healthz.multi_user),
             client.get_user_namespace() or "-")
    return client


def package_info(package_path: str | os.PathLike) -> dict:
    """Name and description of a compiled pipeline (KFP IR YAML); clear errors for a missing or foreign file."""
    path = Path(package_path)
    if not path.is_file():
        raise AptUssError(f"pipeline package {path} does not exist: run make pipeline-compile "
                          "(python -m pipelines.compile --out PATH) first")
    try:
        spec = next(yaml.safe_load_all(path.read_text()), None)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AptUssError(f"pipeline package {path} is not YAML: {str(exc).splitlines()[0]}") from None
    info = spec.get("pipelineInfo") if isinstance(spec, dict) else None
    if not isinstance(info, dict) or not info.get("name") or "root" not in spec:
        raise AptUssError(f"pipeline package {path} is not a compiled KFP pipeline (no pipelineInfo.name "
                          "and root): compile it with make pipeline-compile")
    return {"name": info["name"], "description": info.get("description", ""),
            "parameters": sorted((spec["root"].get("inputDefinitions") or {}).get("parameters") or {})}


def version_name(pipeline_name: str, package_path: str | os.PathLike, now: float | None = None) -> str:
    """``<pipeline>-<UTC yyyymmdd-hhmmss>-<first 8 hex of the package's sha256>``: unique, and says what it holds."""
    digest = hashlib.sha256(Path(package_path).read_bytes()).hexdigest()[:8]
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{pipeline_name}-{stamp}-{digest}"


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "string_value": name}]})


def find_pipeline(client: kfp.Client, name: str, namespace: str | None = None) -> str | None:
    """The id of the pipeline called ``name`` in ``namespace`` (kfp's get_pipeline_id ignores namespaces)."""
    with _call(client, f"looking up pipeline {name!r}"):
        found = client.list_pipelines(filter=_name_filter(name), namespace=namespace, page_size=10)
    matches = [p for p in (found.pipelines or []) if p.display_name == name]
    if len(matches) > 1:
        raise AptUssError(f"{len(matches)} pipelines are called {name!r}: pass --pipeline-name with a unique name")
    return matches[0].pipeline_id if matches else None


def upload_pipeline(client: kfp.Client, package_path: str | os.PathLike, pipeline_name: str,
                    description: str | None = None) -> tuple[str, str]:
    """Upload ``package_path``: a new pipeline if none of that name exists in the client's namespace, else a
    new version of it (see ``version_name``). Returns (pipeline_id, version_id)."""
    info = package_info(package_path)
    if not (pipeline_name or "").strip():
        raise AptUssError("the pipeline name is empty: pass --pipeline-name")
    description = info["description"] if description is None else description
    namespace = client.get_user_namespace() or None
    pipeline_id = find_pipeline(client, pipeline_name, namespace)
    if pipeline_id is None:
        with _call(client, f"uploading pipeline {pipeline_name!r}"):
            pipeline = client.upload_pipeline(str(package_path), pipeline_name=pipeline_name,
                                              description=description, namespace=namespace)
        pipeline_id = pipeline.pipeline_id
        with _call(client, f"listing the versions of pipeline {pipeline_name!r}"):
            versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
        if not pipeline_id or not versions.pipeline_versions:
            raise AptUssError(f"the KFP API at {client.apt_host} created pipeline {pipeline_name!r} "
                              "but returned no version of it")
        version_id = versions.pipeline_versions[0].pipeline_version_id
        log.info("created pipeline %s (%s), version %s", pipeline_name, pipeline_id, version_id)
    else:
        name = version_name(pipeline_name, package_path)
        with _call(client, f"uploading version {name!r} of pipeline {pipeline_name!r}"):
            version = client.upload_pipeline_version(str(package_path), name, pipeline_id=pipeline_id,
                                                     description=description)
        version_id = version.pipeline_version_id
        log.info("uploaded version %s (%s) of pipeline %s (%s)", name, version_id, pipeline_name, pipeline_id)
    return pipeline_id, version_id


def submit_run(client: kfp.Client, pipeline_id: str, version_id: str, experiment: str, run_name: str,
               params: dict) -> str:
    """Start a run of that pipeline version in ``experiment`` (created in the namespace if missing) with
    ``params`` as its runtime parameters; returns the run id."""
    if not (experiment or "").strip():
        raise AptUssError("the KFP experiment name is empty: pass --experiment (or --kfp-experiment)")
    namespace = client.get_user_namespace() or None
    with _call(client, f"getting or creating experiment {experiment!r}"):
        experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    with _call(client, f"creating run {run_name!r}"):
        run = client.run_pipeline(experiment_id=experiment_id, job_name=run_name, params=dict(params),
                                  pipeline_id=pipeline_id, version_id=version_id)
    log.info("started run %s (%s) in experiment %s (%s)", run_name, run.run_id, experiment, experiment_id)
    return run.run_id


def run_url(host: str, run_id: str) -> str:
    return f"{display_host(host)}/#/runs/details/{run_id}"


def default_run_name(pipeline_name: str, now: float | None = None) -> str:
    return f"{pipeline_name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"


def upload(host: str, package_path: str | os.PathLike, pipeline_name: str, namespace: str = "",
           token_file: str | os.PathLike | None = None) -> dict:
    """Connect and upload only (``python -m apt_uss pipeline-upload``, e.g. a Helm post-install Job)."""
    package_info(package_path)  # a missing package fails before any network call
    client = connect(host, namespace, token_file=token_file)
    pipeline_id, version_id = upload_pipeline(client, package_path, pipeline_name)
    return {"pipeline_id": pipeline_id, "version_id": version_id,
            "url": f"{display_host(host)}/#/pipelines/details/{pipeline_id}/version/{version_id}"}

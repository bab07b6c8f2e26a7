"""A local stand-in for the Kubeflow Pipelines REST API (v2beta1), checked against the published schema.

``KfpStandIn`` is a stdlib HTTP server on 127.0.0.1 (a free port, in a thread) that serves the operations
``kfp.Client`` uses to upload a pipeline (or a version of it) and start a run: healthz, pipelines
(list, get, upload, upload_version, versions), experiments (list, get, create) and runs (create, get).

Every request is checked against the vendored swagger files in ``kfp_api_v2beta1/`` (KFP 2.17.0):
the method and path must be a defined operation, query parameters must be declared for it (and typed as
declared; a ``filter`` must parse as a ``v2beta1Filter``), a JSON body must validate against the operation's
body schema (with protojson's rules: unknown fields are errors, lowerCamelCase names and enum numbers are
accepted), and a multipart upload must carry its required ``uploadfile`` part. On top of the schema it
applies the server's own rules this flow meets: unique names, existing parents, required display names,
a namespace in multi-user mode, and runtime parameters that are inputs of the pipeline version, of their
declared types. A request that breaks one gets HTTP 400 and is recorded in ``violations``; so is a defined
operation the stand-in does not serve (HTTP 501), and any response of its own that breaks the schema.

``calls`` records every request (operation id, query, JSON body, uploaded files; never the token).
With ``token=...`` every request needs ``Authorization: Bearer <token>``, else HTTP 401, as a
deployment behind an authenticating proxy answers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

SCHEMA_DIR = Path(__file__).parent / "kfp_api_v2beta1"
SCHEMA_FILES = ("healthz", "pipeline", "pipeline.upload", "experiment", "run", "filter")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
INTEGER = re.compile(r"^-?\d+$")
# KFP IR parameter types -> the JSON types a runtime value of that type may have.
PARAMETER_TYPES = {"STRING": (str,), "NUMBER_INTEGER": (int,), "NUMBER_DOUBLE": (int, float),
                   "BOOLEAN": (bool,), "LIST": (list,), "STRUCT": (dict,)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class Schema:
    """The operations and definitions of the vendored swagger 2.0 files."""

    def __init__(self, folder: Path = SCHEMA_DIR, files=SCHEMA_FILES):
        self.operations = []  # (method, regex, template, operation, definitions, consumes)
        self.definitions = {}
        for name in files:
            doc = json.loads((folder / f"{name}.swagger.json").read_text())
            assert doc.get("swagger") == "2.0", name
            defs = doc.get("definitions", {})
            self.definitions.update(defs)
            for template, ops in doc.get("paths", {}).items():
                pattern = re.sub(r"\\\{[^}]+\\\}", "([^/:]+)", re.escape(template))
                for method, op in ops.items():
                    consumes = op.get("consumes") or doc.get("consumes") or ["application/json"]
                    self.operations.append((method.upper(), re.compile(f"^{pattern}$"), template, op, defs,
                                            consumes))
        # Literal segments win over templated ones (/pipelines/upload over /pipelines/{pipeline_id}).
        self.operations.sort(key=lambda o: -len(re.sub(r"\{[^}]+\}", "", o[2])))

    def match(self, method: str, path: str):
        for op_method, regex, template, op, defs, consumes in self.operations:
            m = regex.match(path)
            if m and op_method == method:
                names = re.findall(r"\{([^}]+)\}", template)
                return op, dict(zip(names, m.groups())), defs, consumes
        return None

    def validate(self, value, schema: dict, defs: dict, where: str = "$", strict_names: bool = False) -> list[str]:
        """Errors of ``value`` against a swagger 2.0 schema, read as protojson reads a request."""
        if "$ref" in schema:
            ref = schema["$ref"].rsplit("/", 1)[-1]
            target = defs.get(ref) or self.definitions.get(ref)
            if target is None:
                return [f"{where}: unknown definition {ref}"]
            return self.validate(value, target, defs, where, strict_names)
        if value is None:  # protojson reads null as the field's default
            return []
        kind = schema.get("type")
        if "enum" in schema:
            if isinstance(value, str) and value in schema["enum"]:
                return []
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(schema["enum"]):
                return []
            return [f"{where}: {value!r} is not one of {schema['enum']}"]
        if kind == "object" or (kind is None and "properties" in schema):
            if not isinstance(value, dict):
                return [f"{where}: expected an object, got {type(value).__name__}"]
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            if props is None and extra is None:
                return []  # google.protobuf.Struct: any object
            errors = []
            aliases = {} if strict_names else {_camel(k): k for k in (props or {})}
            for key, item in value.items():
                name = key if key in (props or {}) else aliases.get(key)
                if name is not None:
                    errors += self.validate(item, props[name], defs, f"{where}.{key}", strict_names)
                elif extra is not None:
                    errors += self.validate(item, extra, defs, f"{where}.{key}", strict_names)
                else:
                    errors.append(f"{where}: unknown field {key!r}")
            return errors
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array, got {type(value).__name__}"]
            errors = []
            for i, item in enumerate(value):
                errors += self.validate(item, schema.get("items", {}), defs, f"{where}[{i}]", strict_names)
            return errors
        if kind == "string":
            fmt = schema.get("format")
            if fmt in ("int64", "uint64"):  # protojson: 64-bit integers as strings (numbers also read)
                ok = (isinstance(value, str) and INTEGER.match(value)) or (
                    isinstance(value, int) and not isinstance(value, bool))
                return [] if ok else [f"{where}: {value!r} is not an {fmt}"]
            if not isinstance(value, str):
                return [f"{where}: expected a string, got {type(value).__name__}"]
            if fmt == "date-time" and not DATE_TIME.match(value):
                return [f"{where}: {value!r} is not an RFC 3339 date-time"]
            return []
        if kind == "integer":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and INTEGER.match(value))
            return [] if ok else [f"{where}: {value!r} is not an integer"]
        if kind == "number":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return [] if ok else [f"{where}: {value!r} is not a number"]
        if kind == "boolean":
            return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean"]
        return []  # {} (google.protobuf.Value): anything


class ApiError(Exception):
    def __init__(self, status: int, message: str, grpc_code: int = 3, upload_style: bool = False):
        super().__init__(message)
        self.status, self.grpc_code, self.upload_style = status, grpc_code, upload_style


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class KfpStandIn:
    """``with KfpStandIn(token=None, multi_user=False) as api: ... api.url, api.calls, api.violations``."""

    def __init__(self, token: str | None = None, multi_user: bool = False):
        self.token = token
        self.multi_user = multi_user
        self.schema = Schema()
        self.calls: list[dict] = []
        self.violations: list[str] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> "KfpStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                standin._handle(self)

            do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def operations(self) -> list[str]:
        return [c["operation"] for c in self.calls]

    # --- request handling ------------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        call = {"method": req.command, "path": parts.path, "operation": None,
                "query": dict(parse_qsl(parts.query, keep_blank_values=True)), "json": None, "files": {},
                "authorized": False, "status": None}
        with self._lock:
            self.calls.append(call)
        try:
            status, body = self._dispatch(req, parts, raw, call)
        except ApiError as exc:
            status = exc.status
            body = ({"error_message": str(exc), "error_details": str(exc)} if exc.upload_style
                    else {"code": exc.grpc_code, "message": str(exc), "details": []})
        call["status"] = status
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _violation(self, call: dict, message: str, status: int = 400, upload_style: bool = False):
        with self._lock:
            self.violations.append(f"{call['method']} {call['path']}: {message}")
        raise ApiError(status, message, upload_style=upload_style)

    def _dispatch(self, req, parts, raw: bytes, call: dict):
        if self.token is not None:
            if req.headers.get("Authorization", "") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthenticated: the request's bearer token is missing or not valid", 16)
        call["authorized"] = True
        found = self.schema.match(req.command, parts.path)
        if found is None:
            self._violation(call, "no such operation in the KFP v2beta1 API", 404)
        op, path_params, defs, consumes = found
        call["operation"] = op["operationId"]
        upload = "multipart/form-data" in consumes
        params = {p["name"]: p for p in op.get("parameters", [])}
        errors = []
        for key, value in call["query"].items():
            spec = params.get(key)
            if spec is None or spec["in"] != "query":
                errors.append(f"query parameter {key!r} is not declared for {op['operationId']}")
            elif spec.get("type") == "integer" and not INTEGER.match(value):
                errors.append(f"query parameter {key}={value!r} is not an integer")
            elif spec.get("type") == "boolean" and value not in ("true", "false"):
                errors.append(f"query parameter {key}={value!r} is not a boolean")
            elif key == "filter":
                try:
                    errors += self.schema.validate(json.loads(value), {"$ref": "#/definitions/v2beta1Filter"},
                                                   defs, "filter")
                except ValueError:
                    errors.append(f"filter {value!r} is not JSON")
        kind = req.headers.get("Content-Type", "")
        body_spec = next((p for p in params.values() if p["in"] == "body"), None)
        if upload:
            if not kind.startswith("multipart/form-data"):
                errors.append(f"expected a multipart/form-data body, got {kind or 'none'}")
            else:
                call["files"] = self._multipart(kind, raw)
                for p in params.values():
                    if p["in"] == "formData" and p.get("required") and p["name"] not in call["files"]:
                        errors.append(f"form field {p['name']!r} is required")
        elif body_spec is not None:
            if "json" not in kind:
                errors.append(f"expected a JSON body, got {kind or 'none'}")
            try:
                call["json"] = json.loads(raw or b"null")
            except ValueError:
                errors.append("the body is not JSON")
            else:
                if call["json"] is None and body_spec.get("required"):
                    errors.append(f"body {body_spec['name']!r} is required")
                errors += self.schema.validate(call["json"], body_spec["schema"], defs, body_spec["name"])
        elif raw:
            errors.append(f"{op['operationId']} takes no body")
        if errors:
            self._violation(call, "; ".join(errors), upload_style=upload)
        handler = getattr(self, f"_op_{op['operationId']}", None)
        if handler is None:
            self._violation(call, f"{op['operationId']} is defined but the stand-in does not serve it", 501)
        with self._lock:
            result = handler(call, path_params, call["query"], call["json"])
        response = op["responses"]["200"].get("schema", {})
        problems = self.schema.validate(result, response, defs, "response", strict_names=True)
        if problems:
            self._violation(call, "stand-in response breaks the schema: " + "; ".join(problems), 500)
        return 200, result

    @staticmethod
    def _multipart(kind: str, raw: bytes) -> dict:
        msg = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + raw)
        files = {}
        for part in msg.iter_parts() if msg.is_multipart() else []:
            name = part.get_param("name", header="content-disposition")
            files[name] = {"filename": part.get_filename(), "content": part.get_payload(decode=True) or b""}
        return files

    # --- server rules ----------------------------------------------------------------------------------
    def _namespace(self, call, namespace: str | None, upload_style=False) -> str:
        namespace = namespace or ""
        if self.multi_user and not namespace:
            self._violation(call, "Invalid input error: In multi-user mode, namespace is required",
                            upload_style=upload_style)
        return namespace if self.multi_user else ""

    def _filtered(self, call, items, query):
        if not query.get("filter"):
            return items
        for pred in json.loads(query["filter"]).get("predicates", []):
            op = pred.get("operation")
            key = pred.get("key")
            value = pred.get("string_value", pred.get("stringValue"))
            if op not in ("EQUALS", 1) or key not in ("display_name", "name") or value is None:
                self._violation(call, f"the stand-in filters only on EQUALS display_name/name, not {pred}", 501)
            items = [i for i in items if i.get(key) == value]
        return items

    @staticmethod
    def _page(items, query, key: str, sort_key: str = "created_at"):
        sort_by = query.get("sort_by", "")
        items = sorted(items, key=lambda i: (i[sort_key], i["_seq"]), reverse=sort_by.endswith(" desc"))
        size = int(query.get("page_size") or 0)
        shown = items[:size] if size > 0 else items
        out = {"total_size": len(items)}
        if shown:
            out[key] = [{k: v for k, v in i.items() if not k.startswith("_")} for i in shown]
        return out

    def _seq(self) -> int:
        return len(self.pipelines) + len(self.versions) + len(self.experiments) + len(self.runs)

    def _read_package(self, call, files) -> tuple[str, bytes, dict]:
        part = files.get("uploadfile") or {}
        filename, content = part.get("filename") or "", part.get("content") or b""
        if not filename.endswith((".yaml", ".yml", ".json", ".zip", ".tar.gz", ".tgz")):
            self._violation(call, f"Unexpected pipeline file format: {filename!r}", upload_style=True)
        try:
            spec = next(yaml.safe_load_all(content.decode()))
        except Exception as exc:  # noqa: BLE001 - any parse failure is the client's
            self._violation(call, f"Failed to read a pipeline spec file: {exc}", upload_style=True)
        if not isinstance(spec, dict) or not (spec.get("pipelineInfo") or {}).get("name") or "root" not in spec:
            self._violation(call, "the uploaded file is not a KFP pipeline spec", upload_style=True)
        return filename, content, spec

    def _new_version(self, pipeline: dict, name: str, description: str, spec: dict, content: bytes) -> dict:
        version = {"pipeline_id": pipeline["pipeline_id"], "pipeline_version_id": str(uuid.uuid4()),
                   "display_name": name, "name": name, "description": description, "created_at": _now(),
                   "pipeline_spec": spec, "_seq": self._seq(), "_content": content}
        self.versions[version["pipeline_version_id"]] = version
        return version

    @staticmethod
    def _public(item: dict, drop=()) -> dict:
        return {k: v for k, v in item.items() if not k.startswith("_") and k not in drop}

    # --- operations ------------------------------------------------------------------------------------
    def _op_HealthzService_GetHealthz(self, call, path, query, body):
        return {"multi_user": self.multi_user, "pipeline_store": "database"}

    def _op_PipelineService_ListPipelines(self, call, path, query, body):
        namespace = query.get("namespace", "") if self.multi_user else ""
        items = [p for p in self.pipelines.values() if p["namespace"] == namespace]
        return self._page(self._filtered(call, items, query), query, "pipelines")

    def _op_PipelineService_GetPipeline(self, call, path, query, body):
        if path["pipeline_id"] not in self.pipelines:
            raise ApiError(404, f"Pipeline {path['pipeline_id']} not found", 5)
        return self._public(self.pipelines[path["pipeline_id"]])

    def _op_UploadPipeline(self, call, path, query, body):
        filename, content, spec = self._read_package(call, call["files"])
        namespace = self._namespace(call, query.get("namespace"), upload_style=True)
        name = query.get("name") or query.get("display_name") or filename.rsplit(".", 1)[0]
        display = query.get("display_name") or name
        if any(p["namespace"] == namespace and display in (p["name"], p["display_name"])
               for p in self.pipelines.values()):
            raise ApiError(409, "Failed to create a pipeline and a pipeline version", upload_style=True)
        pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": display, "name": name,
                    "description": query.get("description", ""), "created_at": _now(), "namespace": namespace,
                    "_seq": self._seq()}
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self._new_version(pipeline, name, pipeline["description"], spec, content)
        return self._public(pipeline)

    def _op_UploadPipelineVersion(self, call, path, query, body):
        _, content, spec = self._read_package(call, call["files"])
        pipeline = self.pipelines.get(query.get("pipelineid", ""))
        if pipeline is None:
            raise ApiError(400, "Failed to create a pipeline version", upload_style=True)
        name = query.get("name") or query.get("display_name") or ""
        if not name:
            self._violation(call, "the version needs a name", upload_style=True)
        if any(v["pipeline_id"] == pipeline["pipeline_id"] and v["name"] == name for v in self.versions.values()):
            raise ApiError(409, "Failed to create a pipeline version", upload_style=True)
        version = self._new_version(pipeline, name, query.get("description", ""), spec, content)
        return self._public(version)

    def _op_PipelineService_ListPipelineVersions(self, call, path, query, body):
        if path["pipeline_id"] not in self.pipelines:
            raise ApiError(404, f"Pipeline {path['pipeline_id']} not found", 5)
        items = [v for v in self.versions.values() if v["pipeline_id"] == path["pipeline_id"]]
        return self._page(self._filtered(call, items, query), query, "pipeline_versions")

    def _op_PipelineService_GetPipelineVersion(self, call, path, query, body):
        version = self.versions.get(path["pipeline_version_id"])
        if version is None or version["pipeline_id"] != path["pipeline_id"]:
            raise ApiError(404, f"Pipeline version {path['pipeline_version_id']} not found", 5)
        return self._public(version)

    def _op_ExperimentService_ListExperiments(self, call, path, query, body):
        namespace = self._namespace(call, query.get("namespace"))
        items = [e for e in self.experiments.values() if e["namespace"] == namespace]
        return self._page(self._filtered(call, items, query), query, "experiments")

    def _op_ExperimentService_GetExperiment(self, call, path, query, body):
        if path["experiment_id"] not in self.experiments:
            raise ApiError(404, f"Experiment {path['experiment_id']} not found", 5)
        return self._public(self.experiments[path["experiment_id"]])

    def _op_ExperimentService_CreateExperiment(self, call, path, query, body):
        body = body or {}
        name = body.get("display_name") or body.get("displayName")
        if not name:
            self._violation(call, "Invalid input error: Experiment display_name is required")
        namespace = self._namespace(call, body.get("namespace"))
        if any(e["namespace"] == namespace and e["display_name"] == name for e in self.experiments.values()):
            raise ApiError(409, f"Already exists: experiment {name!r} in namespace {namespace!r}", 6)
        experiment = {"experiment_id": str(uuid.uuid4()), "display_name": name,
                      "description": body.get("description") or "", "created_at": _now(),
                      "namespace": namespace, "storage_state": "AVAILABLE", "_seq": self._seq()}
        self.experiments[experiment["experiment_id"]] = experiment
        return self._public(experiment)

    def _op_RunService_CreateRun(self, call, path, query, body):
        run = body or {}
        get = lambda snake: run.get(snake, run.get(_camel(snake)))  # noqa: E731 - protojson's two names
        if not get("display_name"):
            self._violation(call, "Invalid input error: run display_name is required")
        experiment_id = get("experiment_id") or query.get("experiment_id")
        if experiment_id not in self.experiments:
            self._violation(call, f"experiment {experiment_id!r} does not exist")
        ref = get("pipeline_version_reference") or {}
        pipeline_id = ref.get("pipeline_id", ref.get("pipelineId"))
        version_id = ref.get("pipeline_version_id", ref.get("pipelineVersionId"))
        if get("pipeline_spec") is not None:
            self._violation(call, "this flow runs an uploaded version: the run should not embed a pipeline spec")
        version = self.versions.get(version_id or "")
        if pipeline_id not in self.pipelines or version is None or version["pipeline_id"] != pipeline_id:
            self._violation(call, f"no version {version_id!r} of pipeline {pipeline_id!r}")
        config = get("runtime_config") or {}
        values = config.get("parameters") or {}
        declared = ((version["pipeline_spec"].get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
        for name, value in values.items():
            if name not in declared:
                self._violation(call, f"runtime parameter {name!r} is not an input of the pipeline")
            kinds = PARAMETER_TYPES.get(declared[name].get("parameterType"), (object,))
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                self._violation(call, f"runtime parameter {name}={value!r} is not of type "
                                      f"{declared[name].get('parameterType')}")
        missing = [n for n, d in declared.items() if n not in values and "defaultValue" not in d
                   and not d.get("isOptional")]
        if missing:
            self._violation(call, f"runtime parameters without a value or default: {missing}")
        stored = {"run_id": str(uuid.uuid4()), "display_name": get("display_name"),
                  "experiment_id": experiment_id, "storage_state": "AVAILABLE",
                  "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
                  "runtime_config": {"parameters": values, **({"pipeline_root": config["pipeline_root"]}
                                                              if config.get("pipeline_root") else {})},
                  "service_account": get("service_account") or "pipeline-runner",
                  "created_at": _now(), "scheduled_at": _now(), "state": "PENDING", "_seq": self._seq()}
        self.runs[stored["run_id"]] = stored
        return self._public(stored)

    def _op_RunService_GetRun(self, call, path, query, body):
        if path["run_id"] not in self.runs:
            raise ApiError(404, f"Run {path['run_id']} not found", 5)
        return self._public(self.runs[path["run_id"]])

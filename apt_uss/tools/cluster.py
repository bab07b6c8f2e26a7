"""What the pipeline's pods read on a Kubeflow cluster: the names the Helm chart (charts/apt-uss) creates.

The S3 keys come from a Secret and the endpoints from a ConfigMap, both in the namespace
where KFP runs the pods, through kfp-kubernetes: never as pipeline parameters, never in the
compiled YAML. Their names are pipeline parameters (``apt_uss.params.spec``, group cluster) so one
cluster can hold several configurations.
"""

SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

# MLFLOW_TRACKING_URI is where steps track when the tracking_uri parameter is empty.
CONFIG_KEYS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "MLFLOW_TRACKING_URI")

# (cpu request, memory request, memory limit) per kind of step; the tuning step also gets GPUs.
RESOURCES = {
    "light": ("500m", "1Gi", "4Gi"),
    "model": ("2", "4Gi", "16Gi"),
    "tune": ("4", "16Gi", "64Gi"),
}

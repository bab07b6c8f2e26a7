"""What the pipeline's pods read on a Kubeflow cluster: the names the Helm chart (charts/apt-uss) creates.

The S3 keys come from a Secret and the endpoints from a ConfigMap, both in the namespace
where KFP runs the pods, through kfp-kubernetes: never as pipeline parameters, never in the
compiled YAML. Their names are pipeline parameters (defaults below) so one cluster can hold
several configurations.
"""

CREDENTIALS_SECRET = "apt-uss-credentials"
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

CONFIG_MAP = "apt-uss-config"
# MLFLOW_TRACKING_URI is where steps track when the tracking_uri parameter is empty.
CONFIG_KEYS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "MLFLOW_TRACKING_URI")

# Tolerated by the tuning pod: the taint GPU node pools carry (NVIDIA's device plugin and the
# big clouds' GPU pools use this key).
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]

# (cpu request, memory request, memory limit) per kind of step; the tuning step also gets GPUs.
RESOURCES = {
    "light": ("500m", "1Gi", "4Gi"),
    "model": ("2", "4Gi", "16Gi"),
    "tune": ("4", "16Gi", "64Gi"),
}

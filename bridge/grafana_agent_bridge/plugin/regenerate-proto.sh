#!/bin/sh
# Regenerate pluginv2_pb2.py and pluginv2_pb2.pyi from pluginv2.proto.
#
# grpcio-tools 1.62.x is pinned on purpose: it embeds protoc 25 (Python gencode 4.25), whose output
# carries no runtime-version check, so the committed code loads on every protobuf runtime that
# bridge/pyproject.toml allows (>=5.26,<8). Newer grpcio-tools emit gencode that refuses older
# runtimes. The gRPC service glue is written by hand in service.py, so no _pb2_grpc is generated.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bridge=$(cd "$here/../.." && pwd)
venv=${PROTOC_VENV:-/tmp/grafana-agent-bridge-protoc}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet 'grpcio-tools==1.62.3'
cd "$bridge"
"$venv/bin/python" -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
  grafana_agent_bridge/plugin/pluginv2.proto

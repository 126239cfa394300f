#!/usr/bin/env bash
# Installs what Kiln needs on a Debian machine: Maven, and Fashion-MNIST for `kiln train`. A JDK 25 must be there
# already (Temurin under /usr/lib/jvm, or JAVA_HOME). Runs apt-get directly as root, through sudo otherwise.
set -euo pipefail
need=()
command -v mvn >/dev/null || need+=(maven)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  echo "setup: installing ${need[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$(dirname "$0")/find-jdk.sh" >/dev/null || { echo "setup: Kiln needs a JDK 25 (Temurin 25 under /usr/lib/jvm, or set JAVA_HOME)" >&2; exit 1; }
echo "setup: ready" >&2

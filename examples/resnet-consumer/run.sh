#!/usr/bin/env bash
# Runs the example built by `mvn package`: ./run.sh [--steps N] [--device cpu|cuda]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
jdk_ok() { [ -x "$1/bin/java" ] && [ "$("$1/bin/java" -XshowSettings:properties -version 2>&1 \
           | awk -F'= ' '/java.specification.version/ {print $2; exit}' | cut -d. -f1)" -ge 25 ] 2>/dev/null; }
if [ -n "${JAVA_HOME:-}" ] && jdk_ok "$JAVA_HOME"; then
  jdk="$JAVA_HOME"
elif [ -x "$here/../../scripts/find-jdk.sh" ]; then
  jdk="$("$here/../../scripts/find-jdk.sh")" || exit 1
else
  echo "resnet-consumer: set JAVA_HOME to a JDK 25 or newer" >&2
  exit 1
fi
jar="$here/target/resnet-consumer.jar"
[ -f "$jar" ] || { echo "resnet-consumer: $jar is missing; run 'mvn package' first" >&2; exit 1; }
# target/lib holds kiln-core, copied there by maven-dependency-plugin at package time
exec "$jdk/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -cp "$jar:$here/target/lib/*" dev.kiln.examples.ResNetExample "$@"

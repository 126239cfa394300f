#!/usr/bin/env bash
# kiln-with.sh JAR ARGS...: the kiln command line with another kiln-core jar (an earlier build) in place of the bundle's
B=$(cd "$(dirname "$0")" && pwd); J=$1; shift
exec /tmp/kiln-jre/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g -XX:+UseG1GC -Xmn1g \
  -cp "$B/kiln.jar:$J$(ls $B/lib/*.jar | grep -v kiln-core | sed 's/^/:/' | tr -d '\n')" dev.kiln.cli.Main "$@"

#!/usr/bin/env bash
# Builds a self-contained bundle for a GPU machine that has no Java and no Maven: the jars, a jlink'ed Java 25
# runtime (packed), the JUnit console launcher and run.sh. Usage:
#   scripts/gpu-bundle.sh DEST        (e.g. /work/main/.gpu-cuda, a folder git ignores)
# On the GPU machine:
#   DEST/run.sh test [junit console args]   the GPU suite (dev.kiln.cuda tests) through the console launcher
#   DEST/run.sh bench                       dev.kiln.cuda.CudaBench
#   DEST/run.sh kiln devices ...            the kiln command line
#   DEST/run.sh java MAIN-CLASS args...     any main class on the test classpath
set -euo pipefail
DEST=${1:?usage: scripts/gpu-bundle.sh DEST}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export JAVA_HOME
JUNIT_CONSOLE=org.junit.platform:junit-platform-console-standalone:1.13.4

cd "$ROOT"
# the kernels prebuilt with nvcc for the H200s (sm_90): a first run there loads them instead of compiling
mvn -q -o -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true -Pprebuilt-kernels -Dkiln.kernel.archs=90 package
mkdir -p "$DEST"
rm -rf "$DEST/lib" "$DEST/runtime.tar.gz" "$DEST/runtime.tar.xz"
mkdir -p "$DEST/lib"
cp kiln-cli/target/kiln-cli.jar "$DEST/kiln.jar"
cp kiln-core/target/kiln-core-*-tests.jar "$DEST/kiln-tests.jar"
cp kiln-onnx/target/kiln-onnx-*-tests.jar "$DEST/kiln-onnx-tests.jar"
cp kiln-cli/target/lib/*.jar "$DEST/lib/"
if ! ls "$DEST"/junit-platform-console-standalone-*.jar >/dev/null 2>&1; then
    mvn -q dependency:copy -Dartifact=$JUNIT_CONSOLE -DoutputDirectory="$DEST" || mvn -q -o dependency:copy -Dartifact=$JUNIT_CONSOLE -DoutputDirectory="$DEST"
fi

# the modules the jars need (jdeps over kiln, its libraries and the JUnit launcher: java.logging, java.sql and jdk.zipfs
# (it scans the test jar) for the JUnit launcher; jdk.jfr to profile a run there with -XX:StartFlightRecording). Not
# java.desktop: on the GPU machine (no fonts) kiln train skips its PNG chart, which is all the bundle's runs drew with
# it; image folders (ImageIO) are not read there, nor do test-all's image tests run; it is 6 MB of the 64 MiB that
# travel. No zip compression inside the image: one xz stream over the whole runtime packs it to about 16 MB, half of
# what zip-9 plus gzip gives.
MODULES="java.base,jdk.incubator.vector,java.logging,java.sql,jdk.unsupported,jdk.zipfs,jdk.jfr"
TMP=$(mktemp -d)
"$JAVA_HOME/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress=zip-0 --output "$TMP/jre"
rm -f "$DEST/runtime.tar.gz"
tar -C "$TMP" -cJf "$DEST/runtime.tar.xz" jre
rm -rf "$TMP"

rm -rf "$DEST/fonts"   # earlier bundles brought a font for the charts

cat > "$DEST/run.sh" <<'RUN'
#!/usr/bin/env bash
# Unpacks the Java runtime into /tmp (once) and runs the GPU suite, the bench or kiln.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
JRE=/tmp/kiln-jre
if [ ! -x "$JRE/bin/java" ]; then
    mkdir -p /tmp/kiln-jre.tmp
    tar -C /tmp/kiln-jre.tmp -xJf "$HERE/runtime.tar.xz" 2>/dev/null \
        || python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$HERE/runtime.tar.xz" /tmp/kiln-jre.tmp
    rm -rf "$JRE" && mv /tmp/kiln-jre.tmp/jre "$JRE"
fi
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export KILN_CACHE_DIR=${KILN_CACHE_DIR:-/tmp/kiln-cache}
[ -f "$HERE/fmnist.tar.xz" ] && [ ! -d "$HERE/fmnist" ] && tar -C "$HERE" -xJf "$HERE/fmnist.tar.xz"
FLAGS="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g -XX:+UseG1GC -Xmn1g"
CP="$HERE/kiln.jar:$HERE/lib/*"
# JUnit's --class-path does not expand the lib/* wildcard as the java launcher does: list the jars (tests that
# load Trainer need progressbar from lib/)
TCP="$HERE/kiln-tests.jar:$HERE/kiln-onnx-tests.jar:$HERE/kiln.jar$(printf ':%s' "$HERE"/lib/*.jar)"
cmd=${1:-test}; shift || true
case "$cmd" in
    test)
        # the GPU suite (dev.kiln.cuda), or only the classes/methods named with --select-class / --select-method;
        # kiln.test.classpath: tests that start child JVMs (kiln launch's) give them the classpath JUnit loaded
        SEL="--select-package dev.kiln.cuda"
        case " $* " in *" --select-class "*|*" --select-method "*) SEL="" ;; esac
        exec "$JRE/bin/java" $FLAGS -Dkiln.test.classpath="$TCP" -jar "$HERE"/junit-platform-console-standalone-*.jar execute \
            --class-path "$TCP" $SEL --details=tree --disable-banner "$@" ;;
    test-all)
        exec "$JRE/bin/java" $FLAGS -jar "$HERE"/junit-platform-console-standalone-*.jar execute \
            --class-path "$TCP" --scan-class-path "$HERE/kiln-tests.jar" --details=summary --disable-banner "$@" ;;
    bench) exec "$JRE/bin/java" $FLAGS -cp "$TCP" dev.kiln.cuda.CudaBench "$@" ;;
    kiln) exec "$JRE/bin/java" $FLAGS -cp "$CP" dev.kiln.cli.Main "$@" ;;
    java) exec "$JRE/bin/java" $FLAGS -cp "$TCP" "$@" ;;
    *) echo "usage: run.sh test|test-all|bench|kiln ARGS|java MAIN ARGS" >&2; exit 2 ;;
esac
RUN
chmod +x "$DEST/run.sh"
du -sh "$DEST"

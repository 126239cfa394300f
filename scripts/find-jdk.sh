#!/usr/bin/env bash
# Prints the home of a JDK 25 or newer: JAVA_HOME when it is one, else the usual install places.
# Exits 1 with a message saying what to install when there is none.
jdk_version() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}'; }
ok() { [ -x "$1/bin/javac" ] && [ "$(jdk_version "$1" | cut -d. -f1)" -ge 25 ] 2>/dev/null; }
if [ -n "${JAVA_HOME:-}" ] && ok "$JAVA_HOME"; then echo "$JAVA_HOME"; exit 0; fi
for d in /usr/lib/jvm/temurin-2[5-9]* /usr/lib/jvm/temurin-[3-9]* /usr/lib/jvm/java-2[5-9]* /usr/lib/jvm/jdk-2[5-9]* \
         /opt/java/openjdk /opt/jdk* "$HOME"/.sdkman/candidates/java/2[5-9]* /Library/Java/JavaVirtualMachines/*/Contents/Home; do
  if [ -d "$d" ] && ok "$d"; then echo "$d"; exit 0; fi
done
if command -v javac >/dev/null; then
  h=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
  if ok "$h"; then echo "$h"; exit 0; fi
fi
echo "kiln: no JDK 25 found. Install one (Debian/Ubuntu: 'apt-get install temurin-25-jdk' from Adoptium's repository," >&2
echo "      or any JDK 25 build) and set JAVA_HOME to it." >&2
exit 1

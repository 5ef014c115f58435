"""A real single-node SLURM for tests: Debian's slurm-wlm and munge, a localhost slurm.conf in a
temporary folder, daemons started here and stopped by their PIDs.

    with LocalSlurm(tmp_path) as cluster:
        subprocess.run([...], env=cluster.env)   # SLURM_CONF points at the temporary cluster
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SBIN = Path("/usr/sbin")
# srun inside a job step reads the default config path (SLURM_CONF does not reach it), so the test
# cluster's slurm.conf is linked there for the test's duration
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def available() -> str | None:
    """None when a local SLURM can be started here, else the reason it cannot."""
    missing = [p for p in ("slurmctld", "slurmd", "munged") if not (SBIN / p).is_file()]
    if missing:
        return f"not installed: {missing} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the local SLURM runs its daemons as root"
    if not Path("/etc/munge/munge.key").is_file():
        return "no /etc/munge/munge.key"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} exists: this machine has its own SLURM, which the test does not touch"
    return None


class LocalSlurm:
    def __init__(self, root: Path, cpus: int = 2, memory_mb: int = 20000, gpus: int = 1):
        """cpus and memory_mb are what the node announces (config_overrides: it may announce more
        than the machine has, so that small jobs run side by side)."""
        self.root = Path(root)
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self.started: list[Path] = []  # pid files of the daemons this object started
        self.linked = False
        self.conf = self.root / "slurm.conf"
        self.spool: Path | None = None  # made by __enter__, removed by __exit__
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_conf(self) -> None:
        # slurmd's spool holds Unix sockets named by job and step, and a socket's path must fit in 108
        # bytes: pytest's temporary folders (longer still under pytest-xdist) do not leave room
        self.spool = Path(tempfile.mkdtemp(prefix="slurmd-"))
        for sub in ("state", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        r = self.root
        # stand-in GPUs: sbatch --gpus=1 needs a gres with device files; nothing here uses them
        devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"][: self.gpus]
        (r / "gres.conf").write_text("".join(f"Name=gpu File={d}\n" for d in devices))
        self.conf.write_text(f"""ClusterName=facexai-test
SlurmctldHost=localhost
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={self.spool}
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=300
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} Gres=gpu:{len(devices)} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")

    def _munge(self) -> None:
        socket = Path("/run/munge/munge.socket.2")
        if socket.exists() and subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return  # a munged is already serving
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", str(SBIN / "munged")], check=True)
        self.started.append(Path("/run/munge/munged.pid"))

    def __enter__(self) -> "LocalSlurm":
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)  # what did start stops, and the spool goes
            raise
        return self

    def _start(self) -> None:
        self._write_conf()
        if SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.unlink()  # left by an earlier test run that was killed
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self.linked = True
        self._munge()
        subprocess.run([str(SBIN / "slurmctld"), "-f", str(self.conf)], check=True, env=self.env)
        self.started.append(self.root / "run/slurmctld.pid")
        subprocess.run([str(SBIN / "slurmd"), "-N", "localhost", "-f", str(self.conf)], check=True, env=self.env)
        self.started.append(self.root / "run/slurmd.pid")
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if state.stdout.strip() == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"the local SLURM node did not become idle; see {self.root}/log")

    def __exit__(self, *exc) -> None:
        if self.started:  # jobs still queued or running (a failed or timed-out test) go first
            subprocess.run(["scancel", "--user", "root"], capture_output=True, env=self.env)
            time.sleep(1)
        for pid_file in reversed(self.started):
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
        self.started.clear()
        if self.linked and SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.unlink()
        self.linked = False
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)
            self.spool = None

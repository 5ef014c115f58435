"""A real single-node SLURM for tests: Debian's slurm-wlm and munge, a localhost slurm.conf in a
temporary folder, daemons started here and stopped by their PIDs (see ../shared/notes/local-slurm.md).

    with LocalSlurm(tmp_path) as cluster:
        subprocess.run([...], env=cluster.env)   # SLURM_CONF points at the temporary cluster
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

SBIN = Path("/usr/sbin")


def available() -> str | None:
    """None when a local SLURM can be started here, else the reason it cannot."""
    missing = [p for p in ("slurmctld", "slurmd", "munged") if not (SBIN / p).is_file()]
    if missing:
        return f"not installed: {missing} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the local SLURM runs its daemons as root"
    if not Path("/etc/munge/munge.key").is_file():
        return "no /etc/munge/munge.key"
    return None


class LocalSlurm:
    def __init__(self, root: Path, cpus: int = 2, memory_mb: int = 20000, gpus: int = 1):
        self.root = Path(root)
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self.started: list[Path] = []  # pid files of the daemons this object started
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_conf(self) -> None:
        for sub in ("state", "spool", "log", "run"):
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
SlurmdSpoolDir={r}/spool
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
        self._write_conf()
        self._munge()
        subprocess.run([str(SBIN / "slurmctld"), "-f", str(self.conf)], check=True, env=self.env)
        self.started.append(self.root / "run/slurmctld.pid")
        subprocess.run([str(SBIN / "slurmd"), "-N", "localhost", "-f", str(self.conf)], check=True, env=self.env)
        self.started.append(self.root / "run/slurmd.pid")
        deadline = time.time() + 60
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if state.stdout.strip() == "idle":
                return self
            time.sleep(1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"the local SLURM node did not become idle; see {self.root}/log")

    def __exit__(self, *exc) -> None:
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

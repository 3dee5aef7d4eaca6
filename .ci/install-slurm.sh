#!/usr/bin/env bash
# Installs Debian's Slurm daemons, client tools and munge so tests/slurm can start a one-node
# cluster on this machine (tests/slurm/cluster.py configures and starts it; nothing here starts a daemon).
# Safe to run again: it does nothing when every tool is already on PATH.
set -euo pipefail

needed=(slurmctld slurmd sbatch srun squeue sacct scancel scontrol sinfo munged mungekey)
missing=()
for tool in "${needed[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "Slurm and munge are already installed."
  exit 0
fi
echo "Installing Slurm and munge (missing: ${missing[*]})."

# root runs apt directly; anyone else goes through sudo
as_root=()
[ "$(id -u)" = 0 ] || as_root=(sudo)

# no prompt may wait for an answer (sudo drops the environment, hence env on the command itself)
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
echo "Installed Slurm $(dpkg-query -W -f='${Version}' slurm-client) and munge $(dpkg-query -W -f='${Version}' munge)."

#!/bin/bash
# probe: median kernel gap of the offloaded exact step with the store on the device, or the copies skipped
cd $(dirname $0)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
gap() {
python - "$1" <<'PY'
import csv, statistics, sys
rows=sorted((float(r['start_us']),float(r['end_us'])) for r in csv.DictReader(open(sys.argv[1])))
gaps=[b[0]-a[1] for a,b in zip(rows,rows[1:]) if b[0]-a[1]<5]
print('median gap %.3f mean %.3f'%(statistics.median(gaps),statistics.mean(gaps)))
PY
}
for variant in base GAP_DEVICE_STORE GAP_SKIP_COPY; do
  for method in graphed-offload-token; do
    env $variant=1 timeout 90 python -m asynctls_hf bench profile-step --model qwen3-8b --context 98304 --batch 1 \
      --method $method --query-smoothing 0.05 --steps 2 --top 5 --timeline /tmp/t.csv 2>&1 | tail -1 | sed "s/^/$variant $method /"
    gap /tmp/t.csv
  done
done

#!/bin/bash
# probe: the captured graphs' structure (CUDAGraph.debug_dump), resident and offloaded exact
cd $(dirname $0)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for method in graphed graphed-offload-token; do
  GAP_DUMP=/tmp/$method.dot timeout 90 python -m asynctls_hf bench profile-step --model qwen3-8b --context 98304 \
    --batch 1 --method $method --steps 1 --top 3 2>&1 | grep -v Warn | grep "dumped\|kernels per\|rror"
  python - /tmp/$method.dot <<'PY'
import re, sys, collections
text = open(sys.argv[1]).read()
nodes = re.findall(r'^"?(\w+)"?\s*\[.*?label="\{?(\w+)', text, re.M)
kinds = collections.Counter(k for _, k in nodes)
edges = re.findall(r'"?(\w+)"?\s*->\s*"?(\w+)"?', text)
indeg = collections.Counter(b for a, b in edges)
outdeg = collections.Counter(a for a, b in edges)
print(sys.argv[1], 'nodes', len(nodes), dict(kinds.most_common(8)), 'edges', len(edges),
      'in>1', sum(1 for v in indeg.values() if v > 1), 'out>1', sum(1 for v in outdeg.values() if v > 1))
PY

  gzip -c /tmp/$method.dot > $OUT/$method.dot.gz
done

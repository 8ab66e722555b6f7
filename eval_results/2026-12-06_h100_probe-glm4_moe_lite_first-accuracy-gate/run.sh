#!/bin/bash
# Run 2026-12-06 (EVAL.md, "The GLM probe from scratch, gated on first tokens"), one H100, four calls on one warm
# machine, in this order (/tmp persists between calls on a warm machine):
#   1. OUT=dir bash eval_results/2026-12-03_cpu_probe-glm4_moe_lite_first-weight/run_h200_next.sh train
#      M and N from scratch side by side, 420 s each (train_M.log, train_N.log, M/ and N/training.json here;
#      N's weights are not kept). first_token.py did not finish inside the 600 s box.
#   2. OUT=dir bash THIS_FOLDER/run.sh continue   M continued alone (14 sample workers), 525 s: M2/.
#   3. OUT=dir bash THIS_FOLDER/run.sh eval M2    eval_M2/ (about 35 s)
#   4. OUT=dir bash THIS_FOLDER/run.sh length     M2 at 16k and 32k at 3e-4, 300 s: M3/, then eval_M3/.
# M's weights are not kept either (M2 and M3 are). To run 2 again, copy config.json, generation_config.json and the
# tokenizer files of asynctls_hf/probes/checkpoints/glm4_moe_lite into M/ beside M's weights.
# train() is common.sh's; it now returns every file of a checkpoint (these runs returned the weights and
# training.json only).
# Usage (repo root): OUT=dir bash eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/run.sh PART [NAME]
source eval_results/2026-12-06_h100_probe-glm4_moe_lite_first-accuracy-gate/common.sh
evaluate() {  # name: full attention, 20 samples, float32, at 16k (three processes at once)
  MODEL=/tmp/$1 bash $E niah_multikey_1@16384,niah_single_3@16384,niah_multivalue@16384 | tail -3
}
case ${1:?give the part to run: continue, eval NAME or length} in
  continue) train M2 525 --init $D/M ;;
  eval) evaluate ${2:?give the model name} ;;
  length) train M3 300 --init /tmp/M2 --stages 16384,32768 --learning-rate 3e-4 && evaluate M3 ;;
  *) echo "unknown part $1: continue, eval NAME or length" >&2; exit 2 ;;
esac

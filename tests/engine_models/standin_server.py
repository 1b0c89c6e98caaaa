"""A stand-in serving process: ``python -m engine_models.standin_server CHECKPOINT`` loads the checkpoint with
``AutoModelForCausalLM.from_pretrained`` (in float32, as a CPU server does: Paddle's CPU matmul has no
bfloat16), prints ``ready``, then answers each line of token ids on stdin with one
forward pass: the logits' shape and a digest of a weight (to tell real from dummy). Its code knows nothing of
pytest-dummyweights, as a real server's does not."""

from __future__ import annotations

import json
import sys

import paddle
from paddleformers.transformers import AutoModelForCausalLM

from engine_models.pretrained import weight_digest


def main() -> None:
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], convert_from_hf=True, dtype="float32")
    model.eval()
    print("ready", flush=True)
    for line in sys.stdin:
        with paddle.no_grad():
            logits = model(paddle.to_tensor([json.loads(line)]), return_dict=True).logits
        print(json.dumps({"shape": list(logits.shape), "digest": weight_digest(model)}), flush=True)


if __name__ == "__main__":
    main()

"""Writes the TorchScript models of the ml_torch tests, made by PyTorch itself, with its results.

    /usr/bin/python3 tests/support/torch_models.py OUT_DIR [ROWS]

OUT_DIR gets one model directory per case (model.pt + model.json, as `akv model put` stores
them) and, for ROWS rows of inputs, what PyTorch computes (little-endian, row-major):

    classifier_v1/, classifier_v2/   44 -> 16 -> 2 (relu, softmax), two seeds
    inputs.f32                       ROWS x 44
    expected_v1.f32, expected_v2.f32 ROWS x 2, each version's softmax
    traced/                          classifier_v1 through torch.jit.trace
    multi/                           forward(embedding f32 [44], counts i64 [3]) returning
                                     {"scores": f32 [2], "total": i64 [1]}
    counts.i64                       ROWS x 3; expected_multi_scores.f32, expected_multi_total.i64
    picky/                           the classifier, raising for any |x| > 100 in its batch
    wrong_inputs/, wrong_outputs/    model.json disagreeing with the module
    not_torchscript/                 a model.pt that is not a TorchScript file
"""
import json
import os
import sys
from typing import Dict

import torch


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(44, 16)
        self.out = torch.nn.Linear(16, 2)

    def forward(self, embedding):
        return torch.softmax(self.out(torch.relu(self.hidden(embedding))), dim=1)


class Multi(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = Classifier()

    def forward(self, embedding, counts) -> Dict[str, torch.Tensor]:
        return {"total": counts.sum(dim=1, keepdim=True),
                "scores": self.classifier(embedding)}


class Picky(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = Classifier()

    def forward(self, embedding):
        if bool((embedding.abs() > 100).any()):
            raise ValueError("an input over 100")
        return self.classifier(embedding)


def spec(inputs, outputs):
    return {"kind": "torchscript", "file": "model.pt", "intra_op_threads": 1,
            "inputs": [{"name": n, "dtype": d, "shape": s} for n, d, s in inputs],
            "outputs": [{"name": n, "dtype": d, "shape": s} for n, d, s in outputs]}


CLASSIFIER_IN = [("embedding", "f32", [44])]
CLASSIFIER_OUT = [("scores", "f32", [2])]


def save(out, name, module, model_json):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(module, bytes):
        with open(os.path.join(d, "model.pt"), "wb") as f:
            f.write(module)
    else:
        module.save(os.path.join(d, "model.pt"))
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(model_json, f)


def write(out, name, tensor):
    with open(os.path.join(out, name), "wb") as f:
        f.write(tensor.contiguous().numpy().tobytes())


def classifier(seed):
    torch.manual_seed(seed)
    return Classifier().eval()


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(7)
    inputs = torch.randn(rows, 44, dtype=torch.float32)
    counts = torch.randint(0, 1000, (rows, 3), dtype=torch.int64)
    write(out, "inputs.f32", inputs)
    write(out, "counts.i64", counts)

    with torch.no_grad():
        for version, seed in ((1, 11), (2, 22)):
            m = classifier(seed)
            save(out, "classifier_v%d" % version, torch.jit.script(m),
                 spec(CLASSIFIER_IN, CLASSIFIER_OUT))
            write(out, "expected_v%d.f32" % version, m(inputs))
            if version == 1:
                save(out, "traced", torch.jit.trace(m, inputs[:4]),
                     spec(CLASSIFIER_IN, CLASSIFIER_OUT))

        torch.manual_seed(33)
        multi = Multi().eval()
        save(out, "multi", torch.jit.script(multi),
             spec([("embedding", "f32", [44]), ("counts", "i64", [3])],
                  [("scores", "f32", [2]), ("total", "i64", [1])]))
        result = multi(inputs, counts)
        write(out, "expected_multi_scores.f32", result["scores"])
        write(out, "expected_multi_total.i64", result["total"])

        torch.manual_seed(44)
        save(out, "picky", torch.jit.script(Picky().eval()), spec(CLASSIFIER_IN, CLASSIFIER_OUT))

        scripted = torch.jit.script(classifier(11))
        save(out, "wrong_inputs", scripted, spec([("x", "f32", [44])], CLASSIFIER_OUT))
        save(out, "wrong_outputs", scripted, spec(CLASSIFIER_IN, [("scores", "f32", [3])]))
        save(out, "not_torchscript", b"this is not a TorchScript file\n",
             spec(CLASSIFIER_IN, CLASSIFIER_OUT))


if __name__ == "__main__":
    main()

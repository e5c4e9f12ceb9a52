"""The benchmark machinery on tiny synthetic data: output format and that both loops train.

No timing assertions; no network, no full dataset.
"""

from __future__ import annotations

import re

import pytest
from torch.utils.data import TensorDataset

from training import bench

SPEEDUP_LINE = re.compile(r"^speedup=\d+\.\d\d$")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_run_bench_trains_both_loops_and_prints_the_report(tiny_tensors):
    tr_x = tiny_tensors[0]  # [256, 784] in [0, 1]
    ref_data = TensorDataset(tr_x.view(-1, 1, 28, 28), tiny_tensors[1])  # same images, (image, label) items
    lines: list[str] = []
    result = bench.run_bench(tr_x, ref_data, repeats=2, device="cpu", batch_size=32, warmup_batches=1,
                             gpu=False, log=lines.append)

    assert len(result.reference_seconds) == len(result.our_seconds) == 2
    assert all(s > 0 for s in result.reference_seconds + result.our_seconds)
    # both actually trained: every parameter moved and the epoch loss went down
    assert result.reference_params_changed and result.our_params_changed
    assert result.reference_losses[-1] < result.reference_losses[0]
    assert result.our_losses[-1] < result.our_losses[0]

    text = "\n".join(lines)
    assert re.search(r"^reference .*\d+\.\d\d s/epoch, [\d,]+ images/s", text, re.M)
    assert re.search(r"^ours .*\d+\.\d\d s/epoch, [\d,]+ images/s", text, re.M)
    assert "GPU throughput: skipped" in text
    assert SPEEDUP_LINE.match(lines[-1]), lines[-1]
    assert float(lines[-1].split("=")[1]) == round(result.speedup, 2)


@pytest.mark.slow
def test_main_end_to_end_on_tiny_mnist_files(tiny_mnist, capsys):
    """`python -m training.bench` path: IDX files -> load_mnist + torchvision MNIST -> report."""
    root, md5 = tiny_mnist
    assert bench.main(["--data-root", str(root), "--repeats", "2", "--device", "cpu",
                       "--warmup-batches", "1", "--threads", "1"], expected_md5=md5, sources=()) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("one epoch of 256 images, batch 128, device cpu, torch threads 1")
    assert any(line.startswith("reference ") for line in lines) and any(line.startswith("ours ") for line in lines)
    gpu_line = [line for line in lines if line.startswith("GPU throughput")]
    assert len(gpu_line) == 1
    assert SPEEDUP_LINE.match(lines[-1]), lines[-1]

#!/usr/bin/python3
"""PyTorch CPU as the anchor for `npm run bench:torch` (bench/torch.ts): the same model, weights and input
that the TypeScript side wrote, timed here with torch.set_num_threads(n). The RepVGG module is the one
the fixtures use (fixtures/make_torch_fixtures.py, DingXiaoH's layout and names).

argv: CASE.json  — {"kind": "deploy"|"train-step", "config": {...}, "weights": PATH.safetensors,
                    "input": PATH.safetensors, "threads": n, "seconds": s}
prints one JSON line: {"medianMs": …, "runs": …, "torch": version}
"""
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures'))
from make_torch_fixtures import RepVGG  # noqa: E402

DT = {'F32': np.float32, 'F64': np.float64, 'I64': np.int64}


def read_safetensors(path):
    with open(path, 'rb') as f:
        b = f.read()
    n = struct.unpack('<Q', b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(b[8 + n + s:8 + n + e], dtype=DT[v['dtype']]).reshape(v['shape']).copy())
    return out


def main():
    case = json.load(open(sys.argv[1]))
    torch.set_num_threads(case['threads'])
    cfg = case['config']
    deploy = case['kind'] == 'deploy'
    model = RepVGG(cfg['num_blocks'], cfg['num_classes'], cfg['width_multiplier'], {int(k): v for k, v in cfg.get('override_groups_map', {}).items()}, cfg.get('in_channels', 3), deploy=deploy)
    model.load_state_dict(read_safetensors(case['weights']), strict=True)
    x = read_safetensors(case['input'])['x']
    if deploy:
        model.eval()
        def step():
            with torch.no_grad():
                model(x)
    else:
        model.train()
        labels = torch.arange(x.shape[0]) % cfg['num_classes']
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), labels).backward()
            opt.step()
    for _ in range(3):
        step()
    times, t0 = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - t0 < case['seconds'] and len(times) < 200):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({'medianMs': statistics.median(times), 'runs': len(times), 'torch': torch.__version__}))


if __name__ == '__main__':
    main()

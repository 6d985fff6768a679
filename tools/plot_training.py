#!/usr/bin/env python3
"""The training curve of the bundled model (models/README.md) from tools/train_model.py's train_log.csv:
training loss, loss on the retrieval answers and loss on the held-out book vs tokens seen, with the
sequence-length phases shaded.

    python3 tools/plot_training.py models/train_log.csv models/training_curve.png
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        rows = list(csv.DictReader(f))
    tokens = [int(r["tokens"]) / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(tokens, [float(r["loss"]) for r in rows], label="training loss (answers weighted)")
    ax.plot(tokens, [float(r["answer_loss"]) for r in rows], label="retrieval answers", alpha=0.7)
    held = [(t, float(r["held_out_loss"])) for t, r in zip(tokens, rows) if r["held_out_loss"]]
    ax.plot([t for t, _ in held], [v for _, v in held], "o-", label="held-out book (Pride and Prejudice)")
    start, phase = 0, 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["seq_len"] != rows[start]["seq_len"]:
            ax.axvspan(tokens[start], tokens[i - 1], alpha=0.12 if phase % 2 == 0 else 0.05, color="gray")
            ax.text((tokens[start] + tokens[i - 1]) / 2, 0.95, f"len {rows[start]['seq_len']}",
                    transform=ax.get_xaxis_transform(), ha="center", fontsize=8)
            start, phase = i, phase + 1
    ax.set_xlabel("tokens seen (M)")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Bundled model: training curve")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot_training: wrote {out}")


if __name__ == "__main__":
    main()

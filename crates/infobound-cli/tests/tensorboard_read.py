"""Reads a folder of TensorBoard event files with TensorBoard's own reader and prints what it
found as JSON, for `tests/cli_tensorboard.rs`.

Usage: python tensorboard_read.py FOLDER

Output: {"scalars": {tag: [[step, value], ...]},
         "images": {tag: [[step, width, height, hex of the encoded bytes], ...]},
         "texts": {tag: [[step, text], ...]},
         "hparams": {name: {"number" | "string" | "bool": value}},
         "plugins": {"text" | "hparams": [tags]}}

The reader is `tensorboard.backend.event_processing.event_accumulator.EventAccumulator` with
every size guidance 0 (keep all events); the hyper-parameters are the `SessionStartInfo` the
HParams plugin parses (`tensorboard.plugins.hparams.metadata`).
"""

import json
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util


def main(folder):
    guidance = {
        event_accumulator.SCALARS: 0,
        event_accumulator.IMAGES: 0,
        event_accumulator.TENSORS: 0,
    }
    acc = event_accumulator.EventAccumulator(folder, size_guidance=guidance)
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "images": {}, "texts": {}, "hparams": {}, "plugins": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags["images"]:
        out["images"][tag] = [
            [e.step, e.width, e.height, e.encoded_image_string.hex()]
            for e in acc.Images(tag)
        ]
    for plugin in ("text", "hparams"):
        try:
            out["plugins"][plugin] = sorted(acc.PluginTagToContent(plugin))
        except KeyError:  # no summary of this plugin in the files
            out["plugins"][plugin] = []
    for tag in out["plugins"]["text"]:
        out["texts"][tag] = [
            [e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode("utf-8")]
            for e in acc.Tensors(tag)
        ]
    if hparams_metadata.SESSION_START_INFO_TAG in out["plugins"]["hparams"]:
        content = acc.PluginTagToContent("hparams")[hparams_metadata.SESSION_START_INFO_TAG]
        start = hparams_metadata.parse_session_start_info_plugin_data(content)
        for name, value in start.hparams.items():
            kind = value.WhichOneof("kind")
            out["hparams"][name] = {kind.replace("_value", ""): getattr(value, kind)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])

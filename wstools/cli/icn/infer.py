"""``ws icn infer``: enhanced response maps (Huang et al. 2021 Sect. 3.2, iterative testing)."""

from __future__ import annotations

import click

from ..common import command, device_option, emit, output_option, path_option, resolve_device, threads_option
from ..stage import per_image_options, run_per_image


@command("infer")
@click.argument("manifest", type=click.Path(dir_okay=False))
@path_option("--responses", help="Naive PRMs of MANIFEST's images (`ws cam peaks`).")
@path_option("--model", help="ICN checkpoint written by `ws icn train`.")
@output_option("Response store to write (.h5, kind `responses`): the same peaks, enhanced maps.")
@click.option("--steps", type=click.IntRange(1), default=3, show_default=True,
              help="Times the ICN is applied, its output (re-normalised) being the next input (Huang et al.: 3).")
@click.option("--instance-batch", type=click.IntRange(1), default=8, show_default=True,
              help="Instances of an image enhanced together.")
@device_option
@threads_option
@per_image_options(workers=False)
def infer(manifest, responses_path, model_path, output, steps, instance_batch, device, shard, resume, force):
    """Enhance every response map of a `responses` store with a trained ICN.

    Each image is resized to the checkpoint's training size, each map is
    min-max normalised and passed through the ICN --steps times (the
    sigmoid output becoming the next input), and the result is resized back
    to the image. The peaks are copied, so `ws match` takes the output as it
    takes the naive maps.

    \b
    Example:
      ws icn infer data/toy/val.json --responses prm_val.h5 --model icn.pt -o enhanced_val.h5
      ws match data/toy/val.json --responses enhanced_val.h5 --proposals props_val.h5 -o results.json
    """
    from ...io.checkpoint import load_model
    from ...io.dataset import load_manifest
    from ...io.responses import read_response_group, write_response_group
    from ...io.store import open_store
    from ...prm.icn import enhance_image

    dev = resolve_device(device)
    m = load_manifest(manifest)
    model, ckpt = load_model(model_path, "icn", device=dev)
    size = int(ckpt.get("size", 320))
    params = {"model": str(model_path), "encoder": ckpt["arch"], "steps": steps, "size": size, "shard": shard}
    n_inst = 0

    def write(g, result):
        nonlocal n_inst
        peaks, maps = result
        write_response_group(g, peaks, maps)
        n_inst += len(maps)

    with open_store(responses_path, "responses") as resp:
        resp.check_images(m, require_all=False)

        def compute(todo):
            for rec in todo:
                r = read_response_group(resp.image(rec.id), m.num_classes, path=responses_path, image_id=rec.id)
                maps = r["maps"]
                if len(maps):
                    maps = enhance_image(model, m.read_image(rec), maps, size, steps, instance_batch, dev)
                yield r["peaks"], maps

        run = run_per_image(output, "responses", m.images, write, classes=m.classes, params=params, dataset=m,
                            inputs=[resp], compute=compute, shard=shard, keep=lambda rec: resp.has_image(rec.id),
                            resume=resume, force=force, desc="icn")
    emit({"output": str(output), "images": run.images, "instances": n_inst, "steps": steps, "encoder": ckpt["arch"],
          "device": dev, "seconds": round(run.seconds, 3),
          "seconds_per_instance": round(run.seconds / max(n_inst, 1), 4)})

"""``ws cam clip``: training-free CAMs from a frozen CLIP and the class names (CLIP-ES)."""

from __future__ import annotations

import click

from ...errors import InputError
from ..common import command, device_option, output_option, parse_floats, resolve_device, threads_option
from ..stage import per_image_options
from .options import classes_from_options, write_cams

CLIP_ES = "Lin et al., CLIP-ES, CVPR 2023"


def _words(text: str, name: str) -> list[str]:
    items = [x.strip() for x in str(text).split(",") if x.strip()]
    if not items:
        raise InputError(f"{name} is empty")
    return items


@command("clip")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--checkpoint", required=True, type=click.Path(),
              help="A CLIP checkpoint folder as transformers' save_pretrained writes it: config.json, "
                   "model.safetensors and the tokenizer files (e.g. a download of openai/clip-vit-base-patch16, "
                   "the ViT-B/16 of CLIP-ES). Loaded offline; pickle weights (.pth/.bin) are refused unread.")
@output_option("CAM store to write (.h5, kind `cams`).")
@click.option("--template", default="a clean origami {}.", show_default=True,
              help=f"Prompt of each class, {{}} = the class name ({CLIP_ES}, Sec. 3.2: 'a clean origami {{}}.' "
                   "beat 'a photo of {}.').")
@click.option("--background-words", "bg_text",
              default="ground,land,grass,tree,building,wall,sky,lake,water,river,sea,railway,railroad,keyboard,"
                      "helmet,cloud,house,mountain,ocean,road,rock,street,valley,bridge,sign", show_default=True,
              help=f"Comma-separated background words, each a prompt through --template that competes with the "
                   f"classes in the softmax ({CLIP_ES}, Sec. 3.2: the VOC background set; for another dataset drop "
                   "words that are its classes). Empty is not allowed: without background prompts every image "
                   "is all foreground.")
@click.option("--class-names", "names_text", default=None,
              help="Comma-separated prompt names, one per class of the manifest, in its order (default: the "
                   "manifest's names with '_' as spaces; CLIP-ES uses e.g. 'potted plant' for VOC's pottedplant).")
@click.option("--softmax-over", type=click.Choice(["all", "tags"]), default="all", show_default=True,
              help=f"Grad-CAM of the softmax over all classes' and background prompts ({CLIP_ES}, Eq. 3, "
                   "softmax-GradCAM), or over the image's tagged classes and the background only.")
@click.option("--refine/--no-refine", default=True, show_default=True,
              help=f"Class-aware attention-based affinity refinement, CAA ({CLIP_ES}, Sec. 3.3): propagate each "
                   "map through the symmetrised, Sinkhorn-normalised self-attention, inside the class's boxes. "
                   "The paper's CAMs use it; --no-refine gives the plain softmax-GradCAM.")
@click.option("--refine-layers", type=click.IntRange(1), default=8, show_default=True,
              help=f"Blocks whose attention maps are averaged for the refinement ({CLIP_ES}: the last 8 of 12).")
@click.option("--box-threshold", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help=f"The class-aware boxes bound the regions above this fraction of the map's maximum "
                   f"({CLIP_ES}: 0.4).")
@click.option("--scales", default="1.0", show_default=True,
              help="Input scales of the image (its own resolution rounded up to the patch size = 1.0, as "
                   "CLIP-ES); the maps are summed over them.")
@classes_from_options("Which classes get CAMs", "CLIP's softmax")
@device_option
@threads_option
@per_image_options(workers=False)
def clip(manifest, checkpoint, output, template, bg_text, names_text, softmax_over, refine, refine_layers,
         box_threshold, scales, classes_from, score_threshold, device, shard, resume, force):
    """CLIP-ES class activation maps of every image of MANIFEST from a frozen
    CLIP, written to a `cams` store; no training (Lin et al., CVPR 2023).

    For each image: one prompt per class (--template with the class name) and
    per background word; the image's similarity to each prompt, times CLIP's
    logit scale, softmaxed; for each tagged class, Grad-CAM of its probability
    on the patch tokens that enter the last transformer block; with --refine
    the class-aware attention affinity; upsampled to the image, summed over
    --scales and divided by the maximum, stored as float16 in [0, 1]. The
    store's scores are CLIP's softmax probabilities of the K classes (against
    all prompts). The store is what `ws cam infer` writes, so `ws grow seeds`,
    `ws features extract` and `ws eval cams` read it unchanged: DSRG's and
    Sun's recipes run on CLIP CAMs.

    Needs the extra: pip install 'wstools[clip]'. Images are processed one at a
    time (sizes differ; the model's memory dominates).

    \b
    Example:
      ws cam clip voc_train.json --checkpoint clip-vit-base-patch16/ -o cams.h5 --device cuda
      ws cam clip voc_train.json --checkpoint clip-vit-base-patch16/ --no-refine \\
          --class-names "aeroplane,bicycle,bird,boat,bottle,bus,car,cat,chair,cow,dining table,dog,horse,\\
      motorbike,person,potted plant,sheep,sofa,train,tv monitor" -o cams_plain.h5
      ws grow seeds cams.h5 --fg rel:0.2 --bg saliency:0.3 --manifest voc_train.json -o seeds.h5
    """
    from ...cam.cams import select_classes
    from ...cam.clip_es import clip_es_cams, text_embeddings
    from ...errors import raise_if_terminated
    from ...io.dataset import load_manifest
    from ...io.foundation import load_clip
    from ...io.images import read_image

    if template.count("{}") != 1:
        raise InputError(f"--template {template!r} must hold exactly one {{}} (the class name)")
    scale_list = parse_floats(scales, "--scales", positive=True)
    background = _words(bg_text, "--background-words")
    m = load_manifest(manifest)
    if names_text is None:
        names = [c.replace("_", " ") for c in m.classes]
    else:
        names = _words(names_text, "--class-names")
        if len(names) != len(m.classes):
            raise InputError(f"--class-names gives {len(names)} names, the manifest has {len(m.classes)} classes")
    dev = resolve_device(device)
    model, tokenizer = load_clip(checkpoint, dev)
    prompts = [template.format(n) for n in names] + [template.format(w) for w in background]
    text = text_embeddings(model, tokenizer, prompts)
    k = len(m.classes)
    params = {"checkpoint": str(checkpoint), "method": "clip-es", "template": template, "class_names": names,
              "background_words": background, "softmax_over": softmax_over, "refine": refine,
              "refine_layers": refine_layers, "box_threshold": box_threshold, "scales": scale_list,
              "classes_from": classes_from, "score_threshold": score_threshold, "device": dev, "shard": shard}
    opts = dict(n_classes=k, scales=scale_list, softmax_over=softmax_over, refine=refine,
                refine_layers=refine_layers, box_threshold=box_threshold)
    n_untagged = 0

    def compute(todo):
        nonlocal n_untagged
        for rec in todo:
            raise_if_terminated()
            image = read_image(m.image_path(rec), image_id=rec.id)
            if image.shape[:2] != (rec.height, rec.width):
                raise InputError(f"image is {image.shape[1]}x{image.shape[0]} px but the manifest says "
                                 f"{rec.width}x{rec.height}", path=m.image_path(rec), image_id=rec.id)
            if classes_from == "tags":
                labels = select_classes(None, m.tag_labels(rec))
                n_untagged += int(len(labels) == 0)
            else:
                _, probs = clip_es_cams(image, model, text, [], **opts)
                labels = select_classes(probs, None, score_threshold)
            cams, scores = clip_es_cams(image, model, text, [int(c) - 1 for c in labels], **opts)
            yield cams, labels, scores

    write_cams(output, m, compute, params=params, shard=shard, resume=resume, force=force, desc="clip cams",
               untagged=lambda: n_untagged,
               summary={"method": "clip-es", "refine": refine, "scales": scale_list, "device": dev})

"""Training-free class activation maps from a frozen CLIP (CLIP-ES: Lin et al., "CLIP is Also an
Efficient Segmenter", CVPR 2023).

For one image and the classes it is tagged with:

1. the image, resized to a multiple of the ViT's patch size at each scale (CLIP-ES keeps the
   image's own resolution: scale 1), goes through CLIP's vision transformer with position
   embeddings interpolated to its token grid;
2. its embedding's cosine similarity to the text embeddings of one prompt per class (the
   ``template`` filled with the class name; CLIP-ES Sec. 3.2 uses "a clean origami {}.") and
   of background prompts (the same template with background words, Sec. 3.2 "background
   set"), times CLIP's logit scale, is turned into probabilities by a softmax over all the
   prompts (Sec. 3.1 "softmax-GradCAM", Eq. 3: classes compete, so a map of one class is
   suppressed where another class or background explains the image better);
3. Grad-CAM (Selvaraju et al. 2017) of each tagged class's softmax probability on the
   patch tokens entering the last transformer block: channel weights = gradients averaged
   over the tokens, map = ReLU(tokens . weights);
4. optionally, class-aware attention-based affinity (CAA, Sec. 3.3): the multi-head
   self-attention of the last ``refine_layers`` blocks (8), averaged over heads and blocks,
   restricted to patch tokens, normalised by one Sinkhorn step (columns, then rows) and
   symmetrised, A = (S + S^T) / 2; each class's map is propagated by it, A . cam, and kept
   inside the boxes of the class's map above ``box_threshold`` (0.4) of its maximum, the
   class-aware mask of Eq. 8 (our reading of it: the box mask gates the refined map);
5. maps are upsampled to the image size, summed over scales and divided by their maximum.

The model is a ``transformers`` ``CLIPModel`` loaded with eager attention (the refinement reads
the attention weights); text embeddings come from :func:`text_embeddings`.
"""

from __future__ import annotations

import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)    # CLIP's image normalisation (Radford et al. 2021)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# CLIP-ES's background words for PASCAL VOC (Lin et al. 2023, Sec. 3.2 and their released code)
BACKGROUND_WORDS = ("ground", "land", "grass", "tree", "building", "wall", "sky", "lake", "water", "river", "sea",
                    "railway", "railroad", "keyboard", "helmet", "cloud", "house", "mountain", "ocean", "road",
                    "rock", "street", "valley", "bridge", "sign")
TEMPLATE = "a clean origami {}."


def text_embeddings(model, tokenizer, prompts: list[str]):
    """(P, D) L2-normalised CLIP text embeddings of ``prompts`` (torch, on the model's device)."""
    import torch

    dev = next(model.parameters()).device
    tok = tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model.text_model(input_ids=tok["input_ids"].to(dev), attention_mask=tok["attention_mask"].to(dev))
        emb = model.text_projection(out.pooler_output)
    return emb / emb.norm(dim=-1, keepdim=True)


def _prepare(image: np.ndarray, scale: float, patch: int, device):
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    nh = max(patch, int(np.ceil(h * scale / patch)) * patch)
    nw = max(patch, int(np.ceil(w * scale / patch)) * patch)
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).to(device).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std, (nh // patch, nw // patch)


def box_mask(cam: np.ndarray, threshold: float) -> np.ndarray:
    """(h, w) bool: the union of the bounding boxes of the 8-connected regions of ``cam`` above
    ``threshold`` x its maximum (CLIP-ES Sec. 3.3, the class-aware mask)."""
    from scipy import ndimage

    peak = float(cam.max())
    out = np.zeros(cam.shape, bool)
    if peak <= 0:
        return out
    lab, n = ndimage.label(cam >= threshold * peak, structure=np.ones((3, 3)))
    for sl in ndimage.find_objects(lab):
        if sl is not None:
            out[sl] = True
    return out


def attention_affinity(attentions, layers: int, n_patches: int):
    """(N, N) symmetric affinity of patch tokens from the last ``layers`` attention maps
    (each (1, heads, 1+N, 1+N)): mean over heads and blocks, one Sinkhorn step, (S + S^T)/2."""
    att = torch_stack_mean(attentions[-layers:])[1:, 1:]          # drop the class token
    att = att / att.sum(0, keepdim=True).clamp(min=1e-12)
    att = att / att.sum(1, keepdim=True).clamp(min=1e-12)
    return (att + att.T) / 2


def torch_stack_mean(attentions):
    import torch

    return torch.stack([a[0].float().mean(0) for a in attentions]).mean(0)


def clip_es_cams(image: np.ndarray, model, text: "torch.Tensor", labels, *, n_classes: int, scales=(1.0,),
                 softmax_over: str = "all", refine: bool = False, refine_layers: int = 8,
                 box_threshold: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """CLIP-ES CAMs of one image (module docstring for the steps and their sources).

    ``image``: (H, W, 3) uint8 RGB. ``text``: (K + B, D) normalised text embeddings, the K class
    prompts first, then B background prompts (:func:`text_embeddings`). ``labels``: the classes
    to map, 0-based indices into the K. ``softmax_over``: "all" (the K classes and the
    background, CLIP-ES) or "tags" (only ``labels`` and the background). Returns ``cams``
    (len(labels), H, W) float32 in [0, 1] (each divided by its maximum) and ``scores`` (K,)
    float32: the softmax probability of each class against all prompts at scale 1 (the first
    scale), in [0, 1].
    """
    import torch
    import torch.nn.functional as F

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    labels = [int(c) for c in labels]
    H, W = image.shape[:2]
    dev = next(model.parameters()).device
    patch = int(model.config.vision_config.patch_size)
    n_layers = int(model.config.vision_config.num_hidden_layers)
    k, n_text = int(n_classes), int(text.shape[0])
    pool = list(range(n_text)) if softmax_over == "all" else sorted(set(labels)) + list(range(k, n_text))
    logit_scale = model.logit_scale.exp().detach()
    total = np.zeros((len(labels), H, W), np.float32)
    scores = None
    for s in scales:
        x, (gh, gw) = _prepare(image, float(s), patch, dev)
        x.requires_grad_(True)
        with torch.enable_grad():
            out = model.vision_model(pixel_values=x, output_hidden_states=True, output_attentions=refine,
                                     interpolate_pos_encoding=True)
            tokens = out.hidden_states[-2]                                # (1, 1 + N, D) into the last block
            emb = model.visual_projection(out.pooler_output)
            emb = emb / emb.norm(dim=-1, keepdim=True)
            logits = logit_scale * emb @ text.T                           # (1, K + B)
            if scores is None:
                scores = logits.detach().softmax(-1)[0, :k].float().cpu().numpy()
            probs = logits[:, pool].softmax(-1)[0]
            maps = []
            for c in labels:
                grad, = torch.autograd.grad(probs[pool.index(c)], tokens, retain_graph=True)
                act, g = tokens[0, 1:].detach().float(), grad[0, 1:].float()
                maps.append(F.relu(act @ g.mean(0)))
        maps = torch.stack(maps) if maps else torch.zeros((0, gh * gw), device=dev)
        if refine and len(labels):
            aff = attention_affinity(out.attentions, min(refine_layers, n_layers), gh * gw)
            refined = []
            for m in maps:
                box = torch.as_tensor(box_mask(m.view(gh, gw).cpu().numpy(), box_threshold), device=dev).view(-1)
                refined.append((aff @ m) * box)
            maps = torch.stack(refined)
        if len(labels):
            up = F.interpolate(maps.view(1, -1, gh, gw), size=(H, W), mode="bilinear", align_corners=False)[0]
            total += up.detach().cpu().numpy()
    peak = total.reshape(len(labels), -1).max(1) if len(labels) else np.zeros(0, np.float32)
    cams = total / np.maximum(peak, 1e-12)[:, None, None]
    return np.clip(cams, 0, 1).astype(np.float32), np.clip(scores, 0, 1).astype(np.float32)

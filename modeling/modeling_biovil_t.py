"""BioViL-T image encoder (hi-ml-multimodal) as a transformers `PreTrainedModel`.

The hi-ml modules do the image work; this file adds what a report decoder needs on top:
several views per study, each view's patch tokens tagged with a view embedding and a patch
position embedding, a learned stand-in for absent views, and the optional prior image.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .configuration_biovil_t import BioViLTConfig

# hi-ml imports `timm.models.layers`, which timm 1.x deprecates with a FutureWarning at every start; nothing a user
# of this model can act on, so that one warning is not shown.
warnings.filterwarnings("ignore", message="Importing from timm.models.layers is deprecated", category=FutureWarning)

try:
    from health_multimodal.image.model.encoder import MultiImageEncoder
    from health_multimodal.image.model.transformer import SinePositionEmbedding, VisionTransformerPooler
except ImportError as error:  # pragma: no cover - exercised only where hi-ml is absent
    raise ImportError(
        "BioViLTModel needs the BioViL-T image model from Microsoft's hi-ml-multimodal package: "
        "`pip install hi-ml-multimodal`."
    ) from error


@dataclass
class BioViLTModelOutput(BaseModelOutputWithPooling):
    r"""
    Output of [`BioViLTModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_views * num_patches, hidden_size)`):
            Patch tokens of every view, view 0 first, each with its view and position embedding added.
            Absent views hold the learned missing-view embedding. Contiguous.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            Mean over the present views of hi-ml's average-pooled image embedding.
        patch_embeddings (`torch.FloatTensor` of shape `(batch_size, num_views, hidden_size, grid, grid)`, *optional*):
            hi-ml's raw patch embeddings per view (zeros for absent views), before any embedding is added; only
            with `output_patch_embeddings=True`.
        view_mask (`torch.BoolTensor` of shape `(batch_size, num_views)`):
            Which views were present.
    """

    patch_embeddings: torch.FloatTensor | None = None
    view_mask: torch.BoolTensor | None = None


class BioViLTPreTrainedModel(PreTrainedModel):
    config: BioViLTConfig
    config_class = BioViLTConfig
    base_model_prefix = "biovil_t"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Re-creates hi-ml's own initialisation, so fresh models and weights missing from a checkpoint start as hi-ml's do.

        torchvision's ResNet: Kaiming-normal (fan_out) convolutions, unit BatchNorm. hi-ml's pooler: truncated-normal
        Linear layers, unit LayerNorm, a sine position buffer. Learned embeddings: truncated normal.
        """
        std = self.config.initializer_range
        if isinstance(module, nn.Conv2d):
            if module is getattr(getattr(self, "image_encoder", None), "backbone_to_vit", None):
                init.kaiming_uniform_(module.weight, a=5**0.5)  # PyTorch's default for this plain Conv2d
            else:
                init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, VisionTransformerPooler):
            init.trunc_normal_(module.type_embed, std=std)
            # A non-persistent buffer: from_pretrained leaves it empty, so it is always recomputed here.
            sine = SinePositionEmbedding(embedding_dim=module.type_embed.shape[-1] // 2, normalize=True)
            grid_h, grid_w = module.grid_shape
            init.copy_(module.pos_embed, sine(mask=torch.ones([1, grid_h, grid_w])).to(module.pos_embed.device))
        elif isinstance(module, MultiImageEncoder):
            init.trunc_normal_(module.missing_previous_emb, std=std)
        elif isinstance(module, BioViLTModel):
            init.trunc_normal_(module.view_embeddings, std=std)
            # 2-D sine positions on the patch grid (values in [-1, 1], as large as the patch features), so the
            # decoder can tell where a token lies from the first step; learned from there on.
            grid = self.config.grid_size
            sine = SinePositionEmbedding(embedding_dim=self.config.hidden_size // 2, normalize=True)
            init.copy_(module.position_embeddings, sine(mask=torch.ones([1, grid, grid]))[0].to(module.position_embeddings))
            init.trunc_normal_(module.missing_view_embedding, std=std)


class BioViLTModel(BioViLTPreTrainedModel):
    """BioViL-T image encoder returning one token sequence per study for a cross-attending decoder.

    Rule for studies with fewer views than `config.num_views` (e.g. frontal only): the absent view is not
    encoded; its tokens are a learned missing-view embedding (plus the view and position embeddings), so
    single- and two-view studies share one batch and one sequence length. View 0 (frontal) is required.

    The prior image, when given, is paired with the frontal view only, through BioViL-T's temporal pooler;
    other views and studies without a prior get hi-ml's learned missing-previous embedding.
    """

    def __init__(self, config: BioViLTConfig) -> None:
        super().__init__(config)
        self.image_encoder = MultiImageEncoder(img_encoder_type=config.image_encoder_type)
        # Neither the ImageNet classifier nor (without priors) the temporal pooler takes part in a forward;
        # removing them keeps DDP free of unused parameters.
        del self.image_encoder.encoder.fc
        if not config.use_previous_image:
            del self.image_encoder.vit_pooler
        self.view_embeddings = nn.Parameter(torch.zeros(config.num_views, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(config.num_patches_per_view, config.hidden_size))
        self.missing_view_embedding = nn.Parameter(torch.zeros(config.hidden_size))
        self.post_init()

    def get_output_embeddings(self) -> None:
        return None

    def forward(
        self,
        pixel_values: torch.Tensor,
        view_mask: torch.Tensor | None = None,
        previous_pixel_values: torch.Tensor | None = None,
        previous_mask: torch.Tensor | None = None,
        output_patch_embeddings: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BioViLTModelOutput | tuple[torch.Tensor, ...]:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_views, 3, image_size, image_size)`):
                Views of each study, frontal first, values in [0, 1] as produced by `BioViLTImageProcessor`.
                A 4-D tensor `(batch_size, 3, image_size, image_size)` is read as frontal views only.
            view_mask (`torch.BoolTensor` of shape `(batch_size, num_views)`, *optional*):
                `True` where a view is present. Defaults to all present. Column 0 must be all `True`.
            previous_pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, 448, 448)`, *optional*):
                Frontal image of each study's prior study (BioViL-T's temporal input).
            previous_mask (`torch.BoolTensor` of shape `(batch_size,)`, *optional*):
                `True` where `previous_pixel_values` holds a real prior; defaults to all `True`. Rows without a
                prior never pass through the temporal pooler.
            output_patch_embeddings (`bool`, *optional*, defaults to `False`):
                Also return hi-ml's raw patch embeddings (`patch_embeddings`).
            output_attentions, output_hidden_states:
                Accepted for `VisionEncoderDecoderModel`; the convolutional encoder returns neither.
            return_dict (`bool`, *optional*):
                Return a [`BioViLTModelOutput`] (default) or a tuple.

        Returns:
            [`BioViLTModelOutput`] with `last_hidden_state` of shape `(batch_size, num_views * num_patches, 512)`.

        Raises:
            ValueError: wrong shapes, a missing frontal view, or `pixel_values` that are not finite float32 / float16
                / bfloat16 values in [0, 1] (what `BioViLTImageProcessor` produces).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        pixel_values = self._check_pixel_values(pixel_values)
        batch_size, num_views = pixel_values.shape[:2]
        view_mask = self._check_view_mask(view_mask, batch_size, num_views, pixel_values.device)
        if previous_pixel_values is not None:
            previous_mask = self._check_previous(previous_pixel_values, previous_mask, batch_size)
            _check_pixel_range(previous_pixel_values, "previous_pixel_values")
            previous_pixel_values = previous_pixel_values.to(self.dtype)

        patch_embeddings = self._encode_views(pixel_values, view_mask, previous_pixel_values, previous_mask)
        tokens = self._patch_tokens(patch_embeddings, view_mask)

        pooled_per_view = patch_embeddings.mean(dim=(-2, -1))  # (B, V, C)
        present = view_mask.unsqueeze(-1).to(pooled_per_view.dtype)
        pooler_output = (pooled_per_view * present).sum(dim=1) / present.sum(dim=1)
        patch_embeddings = patch_embeddings if output_patch_embeddings else None

        if not return_dict:
            return tuple(v for v in (tokens, pooler_output, patch_embeddings, view_mask) if v is not None)
        return BioViLTModelOutput(
            last_hidden_state=tokens,
            pooler_output=pooler_output,
            patch_embeddings=patch_embeddings,
            view_mask=view_mask,
        )

    def _encode_views(
        self,
        pixel_values: torch.Tensor,
        view_mask: torch.Tensor,
        previous_pixel_values: torch.Tensor | None,
        previous_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Runs hi-ml's encoder on the present views only; frontal views with a prior go through the temporal pooler.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, num_views, 512, grid, grid)`; zeros where a view is absent.
        """
        batch_size, num_views = view_mask.shape
        grid = self.config.grid_size
        with_prior = torch.zeros_like(view_mask)
        if previous_pixel_values is not None:
            with_prior[:, 0] = previous_mask
        static = view_mask & ~with_prior
        patches = pixel_values.new_zeros(batch_size, num_views, self.config.hidden_size, grid, grid)
        if static.any():
            patches[static] = self._encode_static(pixel_values[static]).to(patches.dtype)
        if with_prior.any():
            rows = with_prior[:, 0]
            patches[rows, 0] = self.image_encoder(
                current_image=pixel_values[rows, 0], previous_image=previous_pixel_values[rows],
                return_patch_embeddings=True,
            )[0].to(patches.dtype)
        return patches

    def _encode_static(self, images: torch.Tensor) -> torch.Tensor:
        """hi-ml's encoder without a prior: `(N, 3, H, W)` images -> `(N, 512, grid, grid)` patch maps.

        With `config.local_patch_size`, each tile of that side goes through the encoder as an image of its own,
        giving the one patch token of that tile.
        """
        side = self.config.local_patch_size
        if side is None:
            return self.image_encoder(images, return_patch_embeddings=True)[0]
        count, channels = images.shape[:2]
        grid = self.config.grid_size
        tiles = images.unfold(2, side, side).unfold(3, side, side)  # (N, 3, grid, grid, side, side)
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(count * grid * grid, channels, side, side)
        cells = self.image_encoder(tiles, return_patch_embeddings=True)[0]  # (N * grid * grid, 512, h, w)
        tokens = cells.mean(dim=(-2, -1))  # tiles above 32 px leave more than one cell; one token per tile
        return tokens.reshape(count, grid, grid, -1).permute(0, 3, 1, 2)

    def _patch_tokens(self, patch_embeddings: torch.Tensor, view_mask: torch.Tensor) -> torch.Tensor:
        """(B, V, C, g, g) patch maps -> (B, V * g * g, C) tagged tokens."""
        batch_size, num_views, channels = patch_embeddings.shape[:3]
        tokens = patch_embeddings.flatten(3).transpose(2, 3)  # (B, V, g*g, C)
        tokens = torch.where(view_mask[:, :, None, None], tokens, self.missing_view_embedding.to(tokens.dtype))
        tokens = tokens + self.position_embeddings + self.view_embeddings[:num_views, None, :]
        return tokens.reshape(batch_size, -1, channels).contiguous()

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.dim() == 4:
            pixel_values = pixel_values.unsqueeze(1)
        if pixel_values.dim() != 5 or pixel_values.shape[2] != 3:
            raise ValueError(
                "pixel_values must have shape (batch_size, num_views, 3, H, W) or (batch_size, 3, H, W), "
                f"got {tuple(pixel_values.shape)}."
            )
        num_views = pixel_values.shape[1]
        if not 1 <= num_views <= self.config.num_views:
            raise ValueError(f"This encoder takes 1 to {self.config.num_views} views per study, got {num_views}.")
        size = self.config.image_size
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f"Images must be {size}x{size} (config.image_size), got {tuple(pixel_values.shape[-2:])}. "
                "Use the model's BioViLTImageProcessor to resize and crop."
            )
        _check_pixel_range(pixel_values, "pixel_values")
        return pixel_values.to(self.dtype)

    def _check_view_mask(
        self, view_mask: torch.Tensor | None, batch_size: int, num_views: int, device: torch.device
    ) -> torch.Tensor:
        if view_mask is None:
            return torch.ones(batch_size, num_views, dtype=torch.bool, device=device)
        if tuple(view_mask.shape) != (batch_size, num_views):
            raise ValueError(f"view_mask must have shape {(batch_size, num_views)}, got {tuple(view_mask.shape)}.")
        view_mask = view_mask.to(device=device, dtype=torch.bool)
        if not bool(view_mask[:, 0].all()):
            missing = torch.nonzero(~view_mask[:, 0]).flatten().tolist()
            raise ValueError(f"Every study needs a frontal view (view 0); it is absent for batch rows {missing}.")
        return view_mask

    def _check_previous(
        self, previous_pixel_values: torch.Tensor, previous_mask: torch.Tensor | None, batch_size: int
    ) -> torch.Tensor:
        if not self.config.use_previous_image:
            raise ValueError(
                "previous_pixel_values was given but this encoder has no temporal pooler (use_previous_image=False)."
            )
        size = self.config.image_size
        expected = (batch_size, 3, size, size)
        if tuple(previous_pixel_values.shape) != expected:
            raise ValueError(f"previous_pixel_values must have shape {expected}, got {tuple(previous_pixel_values.shape)}.")
        if previous_mask is None:
            return torch.ones(batch_size, dtype=torch.bool, device=previous_pixel_values.device)
        if tuple(previous_mask.shape) != (batch_size,):
            raise ValueError(f"previous_mask must have shape {(batch_size,)}, got {tuple(previous_mask.shape)}.")
        return previous_mask.to(device=previous_pixel_values.device, dtype=torch.bool)


_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check_pixel_range(pixels: torch.Tensor, name: str) -> None:
    """Pixel tensors must be finite floats in [0, 1] (absent views are zeros), as the image processor makes them."""
    if pixels.dtype not in _FLOAT_DTYPES:
        raise ValueError(
            f"{name} must be float32, float16 or bfloat16 values in [0, 1] (BioViLTImageProcessor's output), "
            f"got dtype {pixels.dtype}."
        )
    if torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(pixels).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")
    low, high = float(pixels.min()), float(pixels.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f"{name} must lie in [0, 1] (BioViLT takes images rescaled by 1/255, not normalised); got values in "
            f"[{low:.3g}, {high:.3g}]."
        )


__all__ = ["BioViLTModel", "BioViLTModelOutput", "BioViLTPreTrainedModel"]

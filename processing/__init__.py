"""Image processor, tokenizer set-up and processor of the chest X-ray report model.

Importing this package registers the image processor and processor with `AutoImageProcessor` /
`AutoProcessor` and marks them so that `save_pretrained` copies their code next to their configs.
"""

from transformers import AutoImageProcessor, AutoProcessor

from modeling.configuration_biovil_t import BioViLTConfig
from modeling.configuration_xray_report import XrayReportConfig

from .image_loading import XrayImageError, load_xray_image, remap_to_uint8
from .image_processing_biovil_t import BioViLTImageProcessor
from .processing_xray_report import LABEL_IGNORE_INDEX, XrayReportProcessor, clean_report_text
from .tokenization_xray_report import (
    LEARNT_TOKENIZER_KINDS,
    REPORT_PAD_TOKEN,
    REPORT_UNK_TOKEN,
    build_byte_level_tokenizer,
    check_report_tokenizer,
    load_report_tokenizer,
    prepare_report_tokenizer,
    train_report_tokenizer,
)

# One PIL-based class serves both backend names: transformers asks for "torchvision" first and would otherwise
# warn on every load that it falls back to PIL.
_IMAGE_PROCESSOR_CLASSES = {"pil": BioViLTImageProcessor, "torchvision": BioViLTImageProcessor}
AutoImageProcessor.register(BioViLTConfig, image_processor_classes=_IMAGE_PROCESSOR_CLASSES, exist_ok=True)
AutoImageProcessor.register(XrayReportConfig, image_processor_classes=_IMAGE_PROCESSOR_CLASSES, exist_ok=True)
AutoProcessor.register(XrayReportConfig, XrayReportProcessor, exist_ok=True)

BioViLTImageProcessor.register_for_auto_class("AutoImageProcessor")
XrayReportProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "LABEL_IGNORE_INDEX",
    "LEARNT_TOKENIZER_KINDS",
    "REPORT_PAD_TOKEN",
    "REPORT_UNK_TOKEN",
    "BioViLTImageProcessor",
    "XrayImageError",
    "XrayReportProcessor",
    "build_byte_level_tokenizer",
    "check_report_tokenizer",
    "clean_report_text",
    "load_report_tokenizer",
    "load_xray_image",
    "prepare_report_tokenizer",
    "train_report_tokenizer",
    "remap_to_uint8",
]

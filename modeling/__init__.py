"""BioViL-T image encoder and the BioViL-T → GPT-2 report model, registered with transformers' Auto classes.

Importing this package registers `biovil_t` and `xray_report` with `AutoConfig`, `AutoModel` and
`AutoModelForImageTextToText`, and marks the classes so that `save_pretrained` copies their code next
to the weights (loadable with `trust_remote_code=True` where this package is not installed).
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText

from .assembly import DEFAULT_GENERATION, build_report_model, make_generation_config, set_special_tokens
from .configuration_biovil_t import BioViLTConfig
from .configuration_xray_report import XrayReportConfig
from .modeling_biovil_t import BioViLTModel, BioViLTModelOutput, BioViLTPreTrainedModel
from .modeling_xray_report import XrayReportModel

AutoConfig.register(BioViLTConfig.model_type, BioViLTConfig, exist_ok=True)
AutoModel.register(BioViLTConfig, BioViLTModel, exist_ok=True)
AutoConfig.register(XrayReportConfig.model_type, XrayReportConfig, exist_ok=True)
AutoModelForImageTextToText.register(XrayReportConfig, XrayReportModel, exist_ok=True)

BioViLTConfig.register_for_auto_class()
BioViLTModel.register_for_auto_class("AutoModel")
XrayReportConfig.register_for_auto_class()
XrayReportModel.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "DEFAULT_GENERATION",
    "BioViLTConfig",
    "BioViLTModel",
    "BioViLTModelOutput",
    "BioViLTPreTrainedModel",
    "XrayReportConfig",
    "XrayReportModel",
    "build_report_model",
    "make_generation_config",
    "set_special_tokens",
]

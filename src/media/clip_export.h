// Clip export by stream copy lives in the media layer; its interface is public
// (vidi/clips.h), and media code may call it by these names too.
#pragma once

#include "vidi/clips.h"

namespace vidi::media {

using vidi::clip_extension;
using vidi::export_clip;
using vidi::export_clips;
using vidi::ExportedClip;
using vidi::prepare_clip_dir;

}  // namespace vidi::media

/* deforum_keys.c — every key of a Deforum settings file that the importer
 * does not read, sorted into the "unsupported", "ignored" and "unknown"
 * warnings (vtl__deforum_report_rest). The table of known keys is the
 * format's list of settings vtl leaves alone.
 *
 * deforum_int.h lists the files of the Deforum importer/exporter; the
 * format and the mapping are described in deforum_import.c and
 * docs/deforum.md.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "deforum_int.h"

/* ---- the rest of the keys ---------------------------------------------------------
 * Every key of the file is either read by the importer or listed here. UI
 * keys (and known keys whose value, or whose gate key's value, is the "off"
 * one) are grouped into one "ignored" warning; the others change Deforum's
 * frames in ways vtl does not model and go into the "unsupported" warning;
 * keys in neither list are "unknown". `off` is one or more compact JSON
 * texts separated by '|'. */

typedef struct {
  const char *name;
  bool ui;            /* no effect on frames */
  const char *gate;   /* key whose value decides (NULL: the key itself) */
  const char *off;    /* values of the gate meaning "not in use" */
} known_key;

#define UI(n) {n, true, NULL, NULL}
#define OFF(n, off) {n, false, NULL, off}
#define GATED(n, gate, off) {n, false, gate, off}
#define ALWAYS(n) {n, false, NULL, NULL}

static const known_key known_keys[] = {
    /* output, batch and UI state */
    UI("bit_depth_output"), UI("show_info_on_ui"), UI("save_samples"), UI("save_settings"),
    UI("display_samples"), UI("save_sample_per_step"),
    UI("show_sample_per_step"), UI("n_batch"), UI("n_samples"),
    UI("filename_format"), UI("make_grid"), UI("grid_rows"), UI("outdir"),
    UI("timestring"), UI("seed_internal"), UI("cond_uncond_sync"),
    UI("precision"), UI("C"), UI("f"), UI("prompt"), UI("cond_prompt"),
    UI("uncond_prompt"), UI("clip_prompt"), UI("init_latent"),
    UI("init_sample"), UI("init_sample_raw"), UI("mask_sample"), UI("init_c"),
    UI("resume_from_timestring"), UI("resume_timestring"),
    UI("using_vid_init"), UI("skip_video_creation"), UI("skip_video_for_run_all"),
    UI("make_gif"), UI("delete_imgs"), UI("delete_input_frames"),
    UI("image_path"), UI("mp4_path"), UI("store_frames_in_ram"),
    UI("sd_model_hash"), UI("deforum_git_commit_id"), UI("motion_preview_mode"),
    UI("save_depth_maps"), UI("reroll_patience"), UI("strength_0_no_init"),
    UI("init_image_box"), UI("aspect_ratio_use_old_formula"),
    UI("pix2pix_img_cfg_scale_schedule"), UI("prompt_weighting"),
    UI("normalize_prompt_weights"), UI("log_weighted_subprompts"),
    UI("interpolate_key_frames"), UI("interpolate_x_frames"),
    UI("video_init_path"), UI("extract_nth_frame"), UI("extract_from_frame"),
    UI("extract_to_frame"), UI("overwrite_extracted_frames"),
    UI("exposure_target"), UI("colormatch_image"), UI("colormatch_n_colors"),
    UI("ignore_sat_weight"), UI("clip_name"), UI("cutn"), UI("cut_pow"),
    UI("init_mse_image"), UI("gradient_wrt"), UI("gradient_add_to"),
    UI("decode_method"), UI("grad_threshold_type"),
    UI("clamp_grad_threshold"), UI("clamp_start"), UI("clamp_stop"),
    UI("grad_inject_timing"), UI("r_upscale_factor"), UI("r_upscale_model"),
    UI("r_upscale_keep_imgs"), UI("frame_interpolation_x_amount"),
    UI("frame_interpolation_slow_mo_enabled"),
    UI("frame_interpolation_slow_mo_amount"),
    UI("frame_interpolation_keep_imgs"),
    UI("frame_interpolation_use_upscaled"), UI("soundtrack_path"),
    UI("models_path"), UI("output_path"), UI("model_config"),
    UI("model_checkpoint"), UI("custom_config_path"),
    UI("custom_checkpoint_path"), UI("mask_preset_names"), UI("frames_cache"),
    UI("raw_batch_name"), UI("raw_seed"), UI("first_frame"),
    UI("initial_info"), UI("current_user_os"), UI("noise_mask"),
    UI("half_precision"), UI("device"), UI("clipseg_model"),
    UI("tmp_deforum_run_duplicated_folder"),
    UI("enable_steps_scheduling"), UI("steps_schedule"), UI("seed_schedule"),
    UI("cfg_scale_schedule"), UI("scale"), UI("strength"), UI("fov"),
    UI("near_plane"), UI("far_plane"),
    /* warping and sampling details vtl's renderer decides itself */
    ALWAYS("border"), ALWAYS("noise_type"),
    GATED("perlin_w", "noise_type", "\"uniform\""),
    GATED("perlin_h", "noise_type", "\"uniform\""),
    GATED("perlin_octaves", "noise_type", "\"uniform\""),
    GATED("perlin_persistence", "noise_type", "\"uniform\""),
    GATED("use_depth_warping", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("depth_algorithm", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("midas_weight", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("padding_mode", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("sampling_mode", "animation_mode", "\"2D\"|\"Interpolation\""),
    GATED("aspect_ratio_schedule", "animation_mode", "\"2D\"|\"Interpolation\""),
    OFF("transform_center_x", "\"0:(0.5)\""),
    OFF("transform_center_y", "\"0:(0.5)\""),
    /* features with an off switch */
    OFF("enable_perspective_flip", "false"), OFF("flip_2d_perspective", "false"),
    GATED("perspective_flip_theta", "enable_perspective_flip", "false"),
    GATED("perspective_flip_phi", "enable_perspective_flip", "false"),
    GATED("perspective_flip_gamma", "enable_perspective_flip", "false"),
    GATED("perspective_flip_fv", "enable_perspective_flip", "false"),
    OFF("enable_subseed_scheduling", "false"),
    GATED("subseed_schedule", "enable_subseed_scheduling", "false"),
    GATED("subseed_strength_schedule", "enable_subseed_scheduling", "false"),
    OFF("enable_sampler_scheduling", "false"),
    GATED("sampler_schedule", "enable_sampler_scheduling", "false"),
    OFF("enable_checkpoint_scheduling", "false"),
    GATED("checkpoint_schedule", "enable_checkpoint_scheduling", "false"),
    OFF("enable_clipskip_scheduling", "false"),
    GATED("clipskip_schedule", "enable_clipskip_scheduling", "false"),
    OFF("enable_noise_multiplier_scheduling", "false"),
    GATED("noise_multiplier_schedule", "enable_noise_multiplier_scheduling",
          "false"),
    OFF("enable_ddim_eta_scheduling", "false"),
    GATED("ddim_eta_schedule", "enable_ddim_eta_scheduling", "false"),
    OFF("enable_ancestral_eta_scheduling", "false"),
    GATED("ancestral_eta_schedule", "enable_ancestral_eta_scheduling", "false"),
    OFF("amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    GATED("kernel_schedule", "amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    GATED("sigma_schedule", "amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    GATED("threshold_schedule", "amount_schedule", "\"0:(0)\"|\"0:(0.0)\""),
    OFF("color_coherence", "\"None\""),
    GATED("color_coherence_image_path", "color_coherence", "\"None\""),
    GATED("color_coherence_video_every_N_frames", "color_coherence", "\"None\""),
    GATED("legacy_colormatch", "color_coherence", "\"None\""),
    OFF("color_force_grayscale", "false"),
    OFF("optical_flow_cadence", "\"None\"|false"),
    GATED("cadence_flow_factor_schedule", "optical_flow_cadence", "\"None\"|false"),
    OFF("optical_flow_redo_generation", "\"None\"|false"),
    GATED("redo_flow_factor_schedule", "optical_flow_redo_generation",
          "\"None\"|false"),
    OFF("diffusion_redo", "0|\"0\""),
    OFF("use_init", "false"), GATED("init_image", "use_init", "false"),
    GATED("add_init_noise", "use_init", "false"),
    GATED("init_noise", "use_init", "false"),
    OFF("use_mask", "false"), GATED("mask_file", "use_mask", "false"),
    GATED("invert_mask", "use_mask", "false"),
    GATED("mask_brightness_adjust", "use_mask", "false"),
    GATED("mask_contrast_adjust", "use_mask", "false"),
    GATED("overlay_mask", "use_mask", "false"),
    GATED("mask_overlay_blur", "use_mask", "false"),
    GATED("fill", "use_mask", "false"), GATED("full_res_mask", "use_mask", "false"),
    GATED("full_res_mask_padding", "use_mask", "false"),
    GATED("use_alpha_as_mask", "use_mask", "false"),
    GATED("mask_schedule", "use_mask", "false"),
    OFF("use_noise_mask", "false"),
    GATED("noise_mask_schedule", "use_noise_mask", "false"),
    OFF("use_mask_video", "false"),
    GATED("video_mask_path", "use_mask_video", "false"),
    OFF("use_looper", "false"), GATED("init_images", "use_looper", "false"),
    GATED("image_strength_schedule", "use_looper", "false"),
    GATED("blendFactorMax", "use_looper", "false"),
    GATED("blendFactorSlope", "use_looper", "false"),
    GATED("tweening_frames_schedule", "use_looper", "false"),
    GATED("color_correction_factor", "use_looper", "false"),
    OFF("parseq_manifest", "null|\"\""),
    GATED("parseq_use_deltas", "parseq_manifest", "null|\"\""),
    GATED("parseq_non_schedule_overrides", "parseq_manifest", "null|\"\""),
    OFF("mean_scale", "0|0.0"), OFF("var_scale", "0|0.0"),
    OFF("exposure_scale", "0|0.0"), OFF("colormatch_scale", "0|0.0"),
    OFF("clip_scale", "0|0.0"), OFF("aesthetics_scale", "0|0.0"),
    OFF("init_mse_scale", "0|0.0"), OFF("blue_scale", "0|0.0"),
    OFF("ddim_eta", "0|0.0"), OFF("dynamic_threshold", "null"),
    OFF("static_threshold", "null"), OFF("restore_faces", "false"),
    OFF("tiling", "false"), OFF("seed_resize_from_w", "0|-1"),
    OFF("seed_resize_from_h", "0|-1"), OFF("reroll_blank_frames", "\"ignore\""),
    OFF("subseed", "-1"), OFF("subseed_strength", "0|0.0"),
    OFF("frame_interpolation_engine", "\"None\""),
    OFF("r_upscale_video", "false"), OFF("add_soundtrack", "\"None\""),
};

/* Does the value of `key` in the file read as one of `offs`? Schedules are
 * compared without whitespace. Absent keys are off. */
static bool is_off(json_t *root, const char *key, const char *offs) {
  json_t *v = json_object_get(root, key);
  if (!v) return true;
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!text) return false;
  char *w = text;
  for (char *r = text; *r; r++)
    if (!isspace((unsigned char)*r)) *w++ = *r;
  *w = '\0';
  bool off = false;
  for (const char *p = offs; p && *p && !off;) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    off = strlen(text) == n && memcmp(text, p, n) == 0;
    p = bar ? bar + 1 : NULL;
  }
  free(text);
  return off;
}

/* Lists every key nobody read in three warnings. */
int vtl__deforum_report_rest(json_t *root, json_t *seen,
                             vtl_warnings *warnings) {
  vtl__sbuf unsup = {0}, ignored = {0}, unknown = {0};
  int ncn = 0, cn_on = 0;
  /* hybrid video: A1111 names, then Colab 0.7's hybrid_video_* */
  bool hybrid_on = !is_off(root, "hybrid_composite", "\"None\"|false") ||
                   !is_off(root, "hybrid_motion", "\"None\"") ||
                   !is_off(root, "hybrid_video_composite", "\"None\"|false") ||
                   !is_off(root, "hybrid_video_motion", "\"None\"");
  const char *k;
  json_t *v;
  json_object_foreach(root, k, v) {
    json_t *s = json_object_get(seen, k);
    if (s && json_is_true(s)) continue;
    if (s) { /* read, no effect */
      vtl__sbuf_printf(&ignored, "%s%s", ignored.n ? ", " : "", k);
      continue;
    }
    if (strncmp(k, "cn_", 3) == 0 && isdigit((unsigned char)k[3])) {
      ncn++;
      const char *us = strchr(k + 3, '_');
      if (us && strcmp(us, "_enabled") == 0 && json_is_true(v)) cn_on++;
      continue;
    }
    if (strncmp(k, "hybrid_", 7) == 0) {
      vtl__sbuf *b = hybrid_on ? &unsup : &ignored;
      vtl__sbuf_printf(b, "%s%s", b->n ? ", " : "", k);
      continue;
    }
    size_t i = 0, n = sizeof known_keys / sizeof known_keys[0];
    while (i < n && strcmp(known_keys[i].name, k)) i++;
    vtl__sbuf *b = &unknown;
    if (i < n) {
      const known_key *kk = &known_keys[i];
      bool off = kk->ui || (kk->off && is_off(root, kk->gate ? kk->gate : k,
                                              kk->off));
      /* a gate key present in the old name (flip_2d_perspective) */
      if (!off && kk->gate && strcmp(kk->gate, "enable_perspective_flip") == 0 &&
          !json_object_get(root, kk->gate))
        off = is_off(root, "flip_2d_perspective", "false");
      b = off ? &ignored : &unsup;
    }
    vtl__sbuf_printf(b, "%s%s", b->n ? ", " : "", k);
  }
  int rc = 0;
  if (ncn) {
    if (cn_on)
      vtl__sbuf_printf(&unsup, "%scn_* (%d ControlNet unit%s enabled)",
                       unsup.n ? ", " : "", cn_on, cn_on > 1 ? "s" : "");
    else
      vtl__sbuf_printf(&ignored,
                       "%scn_* (%d ControlNet keys, all units disabled)",
                       ignored.n ? ", " : "", ncn);
  }
  if (unsup.oom || ignored.oom || unknown.oom) rc = VTL_ENOMEM;
  if (!rc && unsup.n)
    rc = vtl_warnings_add(warnings, "unsupported settings ignored (Deforum "
                          "uses them; vtl does not model them): %s", unsup.p);
  if (!rc && ignored.n)
    rc = vtl_warnings_add(warnings, "settings ignored (UI, output or "
                          "switched off): %s", ignored.p);
  if (!rc && unknown.n)
    rc = vtl_warnings_add(warnings, "unknown keys ignored: %s", unknown.p);
  free(unsup.p);
  free(ignored.p);
  free(unknown.p);
  return rc;
}

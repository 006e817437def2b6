"""Images on hover for the embedding scatter: a small script-only component beside a plotly chart.

Plotly's hover labels take only text, so the image under the mouse is drawn by this component: it
listens to the chart's `plotly_hover` / `plotly_unhover` events and shows the point's image (looked up
by the image index in customdata[2], see dashboard/charts/space.py) in a floating box near the cursor.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
import torch

from dashboard.charts.images import png_data_uri

MAX_POINTS = 2000  # ~0.35-0.46 KB of PNG per 28x28 image: beyond this the page would carry megabytes per redraw

_JS = r"""
export default function (component) {
  const { data } = component;
  const key = data.chart_key;
  window.__metascopeHover = window.__metascopeHover || {};
  window.__metascopeHover[key] = data.images;  // the listeners read the latest map: no re-attaching per rerun
  let tip = document.getElementById("metascope-hover-image");
  if (!tip) {
    tip = document.createElement("img");
    tip.id = "metascope-hover-image";
    tip.alt = "image under the cursor";
    tip.style.cssText = "position:fixed;display:none;z-index:100000;width:96px;height:96px;image-rendering:pixelated;" +
      "border:2px solid #3b6ea8;border-radius:4px;background:#000;pointer-events:none;box-shadow:0 2px 8px rgba(0,0,0,.3)";
    document.body.appendChild(tip);
  }
  const attach = () => {
    document.querySelectorAll(`.st-key-${key} .js-plotly-plot`).forEach((gd) => {
      if (gd.__metascopeHoverAttached || typeof gd.on !== "function") return;
      gd.__metascopeHoverAttached = true;
      gd.on("plotly_hover", (ev) => {
        const point = ev && ev.points && ev.points[0];
        const custom = point && point.customdata;
        const src = custom && (window.__metascopeHover[key] || {})[String(custom[2])];
        if (!src) { tip.style.display = "none"; return; }
        const x = (ev.event && ev.event.clientX) || 0, y = (ev.event && ev.event.clientY) || 0;
        tip.src = src;
        // above and to the left of the cursor: plotly draws its text label to the right of the point
        tip.style.left = (x > 130 ? x - 114 : x + 18) + "px";
        tip.style.top = (y > 130 ? y - 114 : y + 18) + "px";
        tip.style.display = "block";
      });
      gd.on("plotly_unhover", () => { tip.style.display = "none"; });
    });
  };
  attach();
  const timer = setInterval(attach, 500);  // the chart's element is replaced when the figure changes
  return () => { clearInterval(timer); tip.style.display = "none"; };
}
"""

_component = st.components.v2.component("metascope_hover_images", js=_JS)


@st.cache_data(max_entries=8, show_spinner=False)
def _data_uris(dataset_key: str, indices: tuple[int, ...], _images: torch.Tensor) -> dict[str, str]:
    """PNG data URIs by image index, encoded once per dataset and set of points (2,000 take ~0.25 s)."""
    return {str(i): png_data_uri(_images[i]) for i in indices}


def hover_images(chart_key: str, images: torch.Tensor, image_idx: Sequence[int], dataset_key: str) -> bool:
    """Show each point's image while the mouse is over it in the plotly chart with widget key `chart_key`.

    images: the dataset's uint8 (n, c, h, w), named by `dataset_key`; image_idx: the dataset image index of
    every point (customdata[2]). False (and nothing mounted) when there are more than MAX_POINTS distinct images.
    """
    unique = tuple(sorted({int(i) for i in image_idx}))
    if len(unique) > MAX_POINTS:
        return False
    _component(data={"chart_key": chart_key, "images": _data_uris(dataset_key, unique, images)}, key=f"hover_{chart_key}")
    return True

/*
report.h — charts and summaries written by the project itself: SVG line and bar charts (no
plotting dependency), CSV reading of train.csv, and a tiny JSON writer.

    SvgSeries s = {"LoRI-S", xs, ys, n};
    svg_line_chart("out/loss.svg", "training loss", "step", "loss", &s, 1);
    svg_bar_chart("out/scores.svg", "exact match (%)", groups, ngroups, series_names, nseries, values);
Every writer goes through a temporary file and a rename; failures are reported, never fatal.
*/
#ifndef REPORT_H
#define REPORT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const double *x, *y;
    int n;
} SvgSeries;

static const char *svg_palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static FILE *report_open(const char *path, char *tmp, size_t n) {
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) fprintf(stderr, "warning: cannot write %s\n", tmp);
    return f;
}
static int report_close(FILE *f, const char *tmp, const char *path) {
    int bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) { remove(tmp); fprintf(stderr, "warning: writing %s failed\n", path); return -1; }
    return 0;
}

static void svg_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f); else if (*s == '>') fputs("&gt;", f); else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}
// an SVG document of W x H with a white background and a centred title
static void svg_begin(FILE *f, double W, double H, const char *title) {
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">", W / 2);
    svg_escape(f, title);
    fprintf(f, "</text>\n");
}

// "nice" tick step for a range
static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

static int svg_line_chart(const char *path, const char *title, const char *xlabel, const char *ylabel,
                          const SvgSeries *s, int ns) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < ns; k++) for (int i = 0; i < s[k].n; i++) {
        if (!isfinite(s[k].y[i])) continue;
        x0 = fmin(x0, s[k].x[i]); x1 = fmax(x1, s[k].x[i]); y0 = fmin(y0, s[k].y[i]); y1 = fmax(y1, s[k].y[i]);
    }
    if (!isfinite(x0)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1;
    double ys = nice_step(y1 - y0, 5);
    y0 = floor(y0 / ys) * ys; y1 = ceil(y1 / ys) * ys;
    const double W = 720, H = 420, L = 70, R = 170, T = 40, B = 50;
    char tmp[4200];
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (!f) return -1;
    svg_begin(f, W, H, title);
#define PX(v) (L + ((v) - x0) / (x1 - x0) * (W - L - R))
#define PY(v) (H - B - ((v) - y0) / (y1 - y0) * (H - T - B))
    for (double v = y0; v <= y1 + ys / 2; v += ys) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", L, PY(v), W - R, PY(v));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, PY(v) + 4, v);
    }
    double xs = nice_step(x1 - x0, 6);
    for (double v = ceil(x0 / xs) * xs; v <= x1 + 1e-9; v += xs)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(v), H - B + 18, v);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", L, T, W - L - R, H - T - B);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (L + W - R) / 2, H - 10);
    svg_escape(f, xlabel);
    fprintf(f, "</text>\n<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.0f)\">", (T + H - B) / 2, (T + H - B) / 2);
    svg_escape(f, ylabel);
    fprintf(f, "</text>\n");
    for (int k = 0; k < ns; k++) {
        const char *col = svg_palette[k % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
        for (int i = 0; i < s[k].n; i++) if (isfinite(s[k].y[i])) fprintf(f, "%.1f,%.1f ", PX(s[k].x[i]), PY(s[k].y[i]));
        fprintf(f, "\"/>\n<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"3\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">", W - R + 12,
                T + 10 + 18.0 * k, col, W - R + 32, T + 15 + 18.0 * k);
        svg_escape(f, s[k].name);
        fprintf(f, "</text>\n");
    }
#undef PX
#undef PY
    fprintf(f, "</svg>\n");
    return report_close(f, tmp, path);
}

// Grouped bars: values[g * nseries + k] for group g, series k. NaN values are left out. lo and hi
// (NULL: none) draw an error bar from lo to hi on each bar (e.g. min-max over seeds).
static int svg_bar_chart_err(const char *path, const char *title, const char *ylabel, const char *const *groups, int ng,
                             const char *const *series, int ns, const double *values, const double *lo, const double *hi) {
    double y1 = 0;
    for (int i = 0; i < ng * ns; i++) if (isfinite(values[i])) y1 = fmax(y1, values[i]);
    for (int i = 0; hi && i < ng * ns; i++) if (isfinite(hi[i])) y1 = fmax(y1, hi[i]);
    if (y1 <= 0) y1 = 1;
    double ys = nice_step(y1, 5);
    y1 = ceil(y1 / ys) * ys;
    const double W = 80 + 90.0 * ng * (ns > 2 ? ns / 2.0 : 1) + 170, H = 420, L = 60, R = 170, T = 40, B = 60;
    char tmp[4200];
    FILE *f = report_open(path, tmp, sizeof(tmp));
    if (!f) return -1;
    svg_begin(f, W, H, title);
    double gw = (W - L - R) / ng, bw = gw * 0.8 / ns;
    for (double v = 0; v <= y1 + ys / 2; v += ys) {
        double y = H - B - v / y1 * (H - T - B);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                L, y, W - R, y, L - 6, y + 4, v);
    }
    for (int g = 0; g < ng; g++) {
        for (int k = 0; k < ns; k++) {
            double v = values[g * ns + k];
            if (!isfinite(v)) continue;
            double h = v / y1 * (H - T - B), x = L + g * gw + gw * 0.1 + k * bw;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%.2f</title></rect>\n", x, H - B - h,
                    bw * 0.92, h, svg_palette[k % 8], v);
            if (lo && hi && isfinite(lo[g * ns + k]) && isfinite(hi[g * ns + k])) {
                double cx = x + bw * 0.46, ya = H - B - lo[g * ns + k] / y1 * (H - T - B), yb = H - B - hi[g * ns + k] / y1 * (H - T - B);
                fprintf(f, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"#222\" fill=\"none\"/>\n", cx, ya, yb,
                        cx - bw * 0.2, ya, cx + bw * 0.2, cx - bw * 0.2, yb, cx + bw * 0.2);
            }
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L + (g + 0.5) * gw, H - B + 18);
        svg_escape(f, groups[g]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#333\"/>\n", L, H - B, W - R, H - B);
    fprintf(f, "<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.0f)\">", (T + H - B) / 2, (T + H - B) / 2);
    svg_escape(f, ylabel);
    fprintf(f, "</text>\n");
    for (int k = 0; k < ns; k++) {
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">", W - R + 12, T + 18.0 * k,
                svg_palette[k % 8], W - R + 30, T + 10 + 18.0 * k);
        svg_escape(f, series[k]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
    return report_close(f, tmp, path);
}

static int svg_bar_chart(const char *path, const char *title, const char *ylabel, const char *const *groups, int ng,
                         const char *const *series, int ns, const double *values) {
    return svg_bar_chart_err(path, title, ylabel, groups, ng, series, ns, values, NULL, NULL);
}

// Reads train.csv (step,train_loss,val_loss,...) into arrays of steps and train losses (rows with a
// train loss). Returns the count, or -1. The caller frees *steps and *losses.
static int read_train_csv(const char *path, double **steps, double **losses) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int n = 0, cap = 256;
    *steps = malloc(sizeof(double) * cap);
    *losses = malloc(sizeof(double) * cap);
    if (!fgets(line, sizeof(line), f)) { fclose(f); return 0; } // header
    while (fgets(line, sizeof(line), f)) {
        char *end;
        double st = strtod(line, &end);
        if (end == line || *end != ',') continue;
        char *p = end + 1;
        if (*p == ',') continue; // no train loss on this row
        double l = strtod(p, &end);
        if (end == p) continue;
        if (n == cap) { cap *= 2; *steps = realloc(*steps, sizeof(double) * cap); *losses = realloc(*losses, sizeof(double) * cap); }
        (*steps)[n] = st; (*losses)[n] = l; n++;
    }
    fclose(f);
    return n;
}

// JSON: strings are escaped; numbers that are not finite are written as null.
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { fputc('\\', f); fputc(c, f); }
        else if (c == '\n') fputs("\\n", f);
        else if (c < 32) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v); else fputs("null", f);
}

#endif // REPORT_H

/*
 * plot.h - SVG charts drawn by gnuplot (Debian package gnuplot-nox) for `eval --plot` and
 * `tune --plot`.
 *
 * A chart is a grid of panels, each with one or more series of (x, y) points; plot_svg writes
 * a gnuplot script holding the data inline, runs gnuplot on it (`set terminal svg`) and checks
 * that the SVG was written. NaN values are gaps in a line.
 */
#ifndef GPUALS_CLI_PLOT_H
#define GPUALS_CLI_PLOT_H

typedef struct {
    const char *title;   /* legend entry */
    const double *x, *y; /* n points */
    int n;
} plot_series;

typedef struct {
    const char *title;
    const char *xlabel, *ylabel;
    int log_x;                    /* logarithmic x axis (every x must be > 0) */
    int points_only;              /* points without joining lines */
    const char *const *xtics;     /* NULL, or n_xtics labels placed at x = 0, 1, ... */
    int n_xtics;
    const plot_series *series;
    int n_series;
} plot_panel;

/* 0 when a gnuplot executable is on PATH; else print a message naming the Debian package
 * gnuplot-nox and return the i/o exit code. Call before long work so a missing gnuplot is
 * reported at once. */
int plot_check_gnuplot(void);

/* 0 when path suits an SVG plot: its file name ends in .svg (any case) or has no extension (a
 * device such as /dev/stdout); else a usage error for command cmd, printed. */
int plot_check_path(const char *cmd, const char *path);

/* Draw the panels (laid out in a grid of about square shape) under an overall title into the
 * SVG file path. Returns 0, or an exit code after printing why (no gnuplot, temporary script
 * not writable, gnuplot failed). */
int plot_svg(const char *path, const char *title, const plot_panel *panels, int n_panels);

#endif /* GPUALS_CLI_PLOT_H */

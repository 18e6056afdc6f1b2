/*
 * plot.c - SVG charts through gnuplot (see plot.h).
 *
 * We write a gnuplot script to a temporary file: the terminal (`svg`, noenhanced so names such
 * as implicit_precision@10 print as they are), a multiplot grid, each series as an inline data
 * block ($pNsM << EOD ... EOD) and one `plot` per panel; then run `gnuplot SCRIPT` with
 * posix_spawnp, wait for it, remove the script and check that the SVG exists. The SVG's path
 * is checked first, so an unwritable one is reported with its reason instead of gnuplot's
 * errors; gnuplot's own messages (of any other failure) go to our stderr. No SVG is written by
 * hand.
 */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "tmppath.h"

extern char **environ;

/* ------------------------------------------------------------------------------------------ */
/* Finding gnuplot                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* 1 when an executable named gnuplot is in one of PATH's directories. */
static int gnuplot_on_path(void)
{
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0') path = "/usr/local/bin:/usr/bin:/bin";
    char dir[4096];
    while (*path != '\0') {
        size_t len = strcspn(path, ":");
        if (len > 0 && len + sizeof "/gnuplot" < sizeof dir) {
            memcpy(dir, path, len);
            strcpy(dir + len, "/gnuplot");
            if (access(dir, X_OK) == 0) return 1;
        }
        path += len;
        if (*path == ':') path++;
    }
    return 0;
}

int plot_check_gnuplot(void)
{
    if (gnuplot_on_path()) return 0;
    cli_note("--plot needs gnuplot, which is not on PATH: install the Debian package "
             "gnuplot-nox (apt-get install gnuplot-nox)");
    return gpuals_status_exit_code(GPUALS_ERR_IO);
}

/* ------------------------------------------------------------------------------------------ */
/* Writing the script                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* s as a gnuplot single-quoted string (a quote inside is doubled). */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '\'') fputc('\'', f);
        if (*s != '\n' && *s != '\r') fputc(*s, f);
    }
    fputc('\'', f);
}

/* A number for a data block; NaN and infinities as NaN (a gap). */
static void put_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("NaN", f);
}

/* The data blocks of every series. */
static void write_data(FILE *f, const plot_panel *panels, int n_panels)
{
    for (int p = 0; p < n_panels; p++) {
        for (int s = 0; s < panels[p].n_series; s++) {
            const plot_series *ser = &panels[p].series[s];
            fprintf(f, "$p%ds%d << EOD\n", p, s);
            for (int j = 0; j < ser->n; j++) {
                put_number(f, ser->x[j]);
                fputc(' ', f);
                put_number(f, ser->y[j]);
                fputc('\n', f);
            }
            fputs("EOD\n", f);
        }
    }
}

/* The settings and plot command of one panel (settings are reset after it). */
static void write_panel(FILE *f, const plot_panel *pn, int p)
{
    /* A panel without points keeps its place in the grid empty. */
    int any = 0;
    for (int s = 0; s < pn->n_series; s++) any |= pn->series[s].n > 0;
    if (!any) {
        fputs("set multiplot next\n", f);
        return;
    }

    /* Axes and titles. */
    fputs("set title ", f);
    put_quoted(f, pn->title);
    fputs("\nset xlabel ", f);
    put_quoted(f, pn->xlabel);
    fputs("\nset ylabel ", f);
    put_quoted(f, pn->ylabel);
    fputc('\n', f);
    if (pn->log_x) fputs("set logscale x\n", f);
    if (pn->xtics != NULL && pn->n_xtics > 0) {
        fputs("set xtics (", f);
        for (int t = 0; t < pn->n_xtics; t++) {
            put_quoted(f, pn->xtics[t]);
            fprintf(f, " %d%s", t, t + 1 < pn->n_xtics ? ", " : ")\n");
        }
        fprintf(f, "set xrange [-0.5:%g]\n", pn->n_xtics - 0.5);
    }

    /* One plot command over the series that have points. */
    const char *style = pn->points_only ? "points pt 7 ps 0.6" : "linespoints pt 7 ps 0.4";
    fputs("plot ", f);
    int first = 1;
    for (int s = 0; s < pn->n_series; s++) {
        if (pn->series[s].n == 0) continue;
        fprintf(f, "%s$p%ds%d using 1:2 with %s title ", first ? "" : ", ", p, s, style);
        put_quoted(f, pn->series[s].title);
        first = 0;
    }
    fputc('\n', f);

    /* Back to the defaults for the next panel. */
    fputs("unset logscale x\nset xtics autofreq\nset autoscale x\n", f);
}

/* Write the whole script to f. */
static void write_script(FILE *f, const char *svg_path, const char *title,
                         const plot_panel *panels, int n_panels)
{
    int cols = 1;
    while (cols * cols < n_panels) cols++;
    int rows = (n_panels + cols - 1) / cols;

    fprintf(f, "set terminal svg size %d,%d dynamic noenhanced font 'sans,11' "
               "background '#ffffff'\n",
            560 * cols, 400 * rows + 40);
    fputs("set output ", f);
    put_quoted(f, svg_path);
    fputs("\nset datafile missing 'NaN'\nset grid\nset key top right\n", f);
    write_data(f, panels, n_panels);
    fprintf(f, "set multiplot layout %d,%d title ", rows, cols);
    put_quoted(f, title);
    fputc('\n', f);
    for (int p = 0; p < n_panels; p++) write_panel(f, &panels[p], p);
    fputs("unset multiplot\nset output\n", f);
}

/* ------------------------------------------------------------------------------------------ */
/* Running gnuplot                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Run `gnuplot script`; 0 when it exits with 0, else an exit code after a message. */
static int run_gnuplot(const char *script)
{
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (err != 0) {
        cli_note("cannot run gnuplot: %s (the Debian package is gnuplot-nox)", strerror(err));
        return gpuals_status_exit_code(GPUALS_ERR_IO);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            cli_note("waiting for gnuplot failed: %s", strerror(errno));
            return gpuals_status_exit_code(GPUALS_ERR_IO);
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cli_note("gnuplot failed (%s %d) drawing the plot",
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return gpuals_status_exit_code(GPUALS_ERR_IO);
    }
    return 0;
}

/* Whether the file at path is a complete SVG document: it ends with the closing </svg> tag
 * (gnuplot does not report a failed write, e.g. on a full disk, so we look). */
static int svg_complete(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    char tail[64] = "";
    size_t n = 0;
    if (fseek(f, -(long)(sizeof tail - 1), SEEK_END) != 0) rewind(f);
    n = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[n] = '\0';
    return strstr(tail, "</svg>") != NULL;
}

int plot_check_path(const char *cmd, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash != NULL ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name || strcasecmp(dot, ".svg") == 0) return 0;
    return cli_usage_error(cmd, "--plot draws SVG: give a file name ending in .svg, not %s",
                           path);
}

int plot_svg(const char *path, const char *title, const plot_panel *panels, int n_panels)
{
    int rc = plot_check_gnuplot();
    if (rc == 0) rc = cli_check_output("--plot", path, 0);
    if (rc != 0) return rc;

    /* The script, in a private temporary file; the SVG goes to a temporary name beside path
     * and is renamed only once it is complete. */
    const char *tmp = getenv("TMPDIR");
    char script[4096], partial[4200];
    snprintf(script, sizeof script, "%s/gpu-als-plot-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    struct stat st;
    int direct = lstat(path, &st) == 0 && !S_ISREG(st.st_mode); /* a link or device: in place */
    int slot = -1;
    if (direct) {
        snprintf(partial, sizeof partial, "%s", path);
    } else {
        int pfd = cli_temp_file(path, partial, sizeof partial, &slot);
        if (pfd < 0) {
            cli_note("cannot write %s (--plot): %s", path, strerror(errno));
            return gpuals_status_exit_code(GPUALS_ERR_IO);
        }
        close(pfd);
    }
    int fd = mkstemp(script);
    int script_slot = fd >= 0 ? tmppath_add(script, TMPPATH_FILE, NULL) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        cli_note("cannot write a temporary gnuplot script %s: %s", script, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(script);
        }
        tmppath_drop(script_slot);
        if (!direct) unlink(partial);
        tmppath_drop(slot);
        return gpuals_status_exit_code(GPUALS_ERR_IO);
    }
    write_script(f, partial, title, panels, n_panels);
    int err = fflush(f) != 0 ? errno : ferror(f) ? EIO : 0;
    if (fclose(f) != 0 && err == 0) err = errno;
    if (err != 0) {
        cli_note("cannot write the temporary gnuplot script %s: %s", script, strerror(err));
        unlink(script);
        tmppath_drop(script_slot);
        if (!direct) unlink(partial);
        tmppath_drop(slot);
        return gpuals_status_exit_code(GPUALS_ERR_IO);
    }

    /* Draw, clean up, and publish the SVG only when it is whole. */
    rc = run_gnuplot(script);
    unlink(script);
    tmppath_drop(script_slot);
    if (rc == 0 && !svg_complete(partial)) {
        cli_note("gnuplot could not write a complete plot to %s (is the disk full?)", path);
        rc = gpuals_status_exit_code(GPUALS_ERR_IO);
    }
    if (rc == 0 && !direct && rename(partial, path) != 0) {
        cli_note("cannot write %s: %s", path, strerror(errno));
        rc = gpuals_status_exit_code(GPUALS_ERR_IO);
    }
    if (rc != 0 && !direct) unlink(partial);
    tmppath_drop(slot);
    return rc;
}

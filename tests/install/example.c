/*
 * example.c - the C API example of the README as a whole program, built by test_install.sh
 * against an installed gpu-als (`pkg-config --cflags --libs gpuals`) the way a user's program
 * would be: train on a MovieLens ratings.csv / movies.csv pair and print user 414's top 10.
 *
 * Usage: example RATINGS_CSV MOVIES_CSV
 */
#include <gpuals.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: example RATINGS_CSV MOVIES_CSV\n");
        return 2;
    }
    gpuals_load_options lo;
    gpuals_load_options_default(&lo);
    lo.ratings_path = argv[1];
    lo.titles_path = argv[2];
    lo.min_rating = 3;

    gpuals_data *data = NULL;
    gpuals_model *model = NULL;
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 32;
    if (gpuals_data_load(&lo, &data) != GPUALS_OK ||
        gpuals_train(data, &p, NULL, NULL, &model) != GPUALS_OK) {
        fprintf(stderr, "%s\n", gpuals_last_error());
        gpuals_data_free(data);
        return 1;
    }
    gpuals_hit top[10];
    int n = 0;
    if (gpuals_recommend(model, gpuals_model_user_index(model, "414"), 10, NULL, top, &n) !=
        GPUALS_OK) {
        fprintf(stderr, "%s\n", gpuals_last_error());
        return 1;
    }
    for (int k = 0; k < n; k++)
        printf("%s\t%s\t%.4f\n", gpuals_model_item_id(model, top[k].index),
               gpuals_model_item_title(model, top[k].index), top[k].score);
    gpuals_model_free(model);
    gpuals_data_free(data);
    return 0;
}

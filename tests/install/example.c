/*
 * example.c - the C API examples of the README as a whole program, built by test_install.sh
 * against an installed gpu-als (`pkg-config --cflags --libs gpuals`) the way a user's program
 * would be: train on a MovieLens ratings.csv / movies.csv pair, print user 414's top 10 and
 * the top 10 of a new user who likes three films, then train again on 80% of the ratings and
 * print the ranking metrics on the other 20%.
 *
 * Output, tab-separated: "414" or "new", item id, title, score (ten lines each); then
 * "implicit_precision@10", "ndcg@10" and "auc" with their values.
 *
 * Usage: example RATINGS_CSV MOVIES_CSV
 */
#include <gpuals.h>
#include <stdio.h>

static void print_top(const gpuals_model *model, const char *who, const gpuals_hit *top, int n)
{
    for (int k = 0; k < n; k++)
        printf("%s\t%s\t%s\t%.4f\n", who, gpuals_model_item_id(model, top[k].index),
               gpuals_model_item_title(model, top[k].index), top[k].score);
}

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

    gpuals_data *data = NULL, *train = NULL, *test = NULL;
    gpuals_model *model = NULL, *held_out = NULL;
    gpuals_params p;
    gpuals_params_default(&p);
    p.factors = 32;
    int rc = 1;
    if (gpuals_data_load(&lo, &data) != GPUALS_OK ||
        gpuals_train(data, &p, NULL, NULL, &model) != GPUALS_OK)
        goto done;

    /* What user 414 should see next. */
    gpuals_hit top[10];
    int n = 0;
    int64_t u;
    if (gpuals_find_user(model, "414", &u) != GPUALS_OK ||
        gpuals_recommend(model, u, 10, NULL, top, &n) != GPUALS_OK)
        goto done;
    print_top(model, "414", top, n);

    /* A new user from three favourite titles. */
    const char *favourites[] = {"Alien (1979)", "Heat (1995)", "Fargo (1996)"};
    int64_t liked[3];
    float stars[3] = {5, 5, 5};
    for (int k = 0; k < 3; k++)
        if (gpuals_find_item(model, favourites[k], &liked[k]) != GPUALS_OK) goto done;
    if (gpuals_recommend_new_user(model, liked, stars, 3, 10, NULL, top, &n) != GPUALS_OK)
        goto done;
    print_top(model, "new", top, n);

    /* Held-out evaluation: train on 80% of the interactions, rank the other 20%. */
    gpuals_split_options so;
    gpuals_split_options_default(&so);
    gpuals_metrics met;
    if (gpuals_data_split(data, &so, &train, &test) != GPUALS_OK ||
        gpuals_train(train, &p, NULL, NULL, &held_out) != GPUALS_OK ||
        gpuals_evaluate(held_out, test, 10, 1, &met) != GPUALS_OK)
        goto done;
    printf("implicit_precision@10\t%.4f\nndcg@10\t%.4f\nauc\t%.4f\n", met.implicit_precision,
           met.ndcg, met.auc);
    rc = 0;

done:
    if (rc != 0) fprintf(stderr, "%s\n", gpuals_last_error());
    gpuals_model_free(held_out);
    gpuals_model_free(model);
    gpuals_data_free(test);
    gpuals_data_free(train);
    gpuals_data_free(data);
    return rc;
}

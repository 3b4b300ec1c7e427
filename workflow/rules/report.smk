# What `snakemake --report` needs beyond the report() flags on the rules' outputs and the
# captions in workflow/report/: the resolved configuration for the templates, a figure
# directive that embeds its picture, and the way this workflow marks a file for the report.
from vadusa import snakemake_report
from vadusa.tracking.provenance import provenance_notes

# Snakemake renders the captions and the front page (workflow/report/*.rst, Jinja) with the
# config dict alone (`snakemake.config`): the YAML as given, without the defaults of
# vadusa.config that the jobs ran with. The report states what ran, so the templates get the
# resolved config too. Set after validate() in common.smk, which must see the user's keys only
# (the schema allows no "resolved"); jobs never read it (they read RESOLVED), and cluster jobs
# re-parse the config files rather than inherit this dict.
config["resolved"] = CFG.to_dict()
# The files the front page shows when the report holds them, where the plan puts them.
config["plan"] = PLAN.front_page_files()
# Per family, what to know about where its tokens come from (trained here: a recipe).
config["notes"] = provenance_notes(CFG)

snakemake_report.register()  # `.. vadusa-figure::` on the front page


def reported(path, caption, category, subcategory, kind, shows):
    """report() the way this workflow marks a figure or table: its caption from
    workflow/report/<caption>.rst, and labels `kind` (figure, table, table (CSV)) and `shows`,
    the columns of the report's list. Category and subcategory name the report's folders
    (wildcards allowed)."""
    return report(path, caption=f"../report/{caption}.rst", category=category,
                  subcategory=subcategory, labels={"kind": kind, "shows": shows})

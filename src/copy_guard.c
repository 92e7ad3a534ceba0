/*
 * copy_guard.c
 *	  The utility hook that refuses the commands which copy relation files
 *	  directly: with aurora.storage_manager the compute keeps no relation
 *	  files (their pages live in storage), so such a copy would copy
 *	  nothing and lose the data.  Installed by the storage manager
 *	  (smgr.c) when it is on.
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "copy_guard.h"

static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static bool
option_is(List *options, const char *name, const char *value)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, name) == 0 &&
			(value == NULL || pg_strcasecmp(defGetString(d), value) == 0))
			return true;
	}
	return false;
}

/*
 * CREATE DATABASE ... STRATEGY FILE_COPY and ALTER DATABASE ... SET
 * TABLESPACE copy relation files directly, which the compute does not have.
 */
static void
refuse_file_copies(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, CreatedbStmt) &&
		option_is(((CreatedbStmt *) parsetree)->options, "strategy", "file_copy"))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("CREATE DATABASE with STRATEGY FILE_COPY is not supported with aurora.storage_manager"),
				 errdetail("FILE_COPY copies relation files, and the compute keeps none: relation pages live in storage."),
				 errhint("Use STRATEGY WAL_LOG (the default).")));
	if (IsA(parsetree, AlterDatabaseStmt) &&
		option_is(((AlterDatabaseStmt *) parsetree)->options, "tablespace", NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ALTER DATABASE SET TABLESPACE is not supported with aurora.storage_manager"),
				 errdetail("It copies relation files, and the compute keeps none: relation pages live in storage."),
				 errhint("Move the tables one by one with ALTER TABLE ... SET TABLESPACE.")));
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

void
aurora_copy_guard_init(void)
{
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = refuse_file_copies;
}

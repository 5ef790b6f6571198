package rbac

import (
	"context"
	"fmt"
	"slices"

	"github.com/ferry-iot/ferry"
)

// sphereReaderActions is what Azure Sphere Reader adds to "*/read":
// the catalog list and count actions and the certificate chain download.
var sphereReaderActions = []string{
	"Microsoft.AzureSphere/*/read",
	"Microsoft.AzureSphere/catalogs/countDevices/action",
	"Microsoft.AzureSphere/catalogs/listDeviceGroups/action",
	"Microsoft.AzureSphere/catalogs/listDeviceInsights/action",
	"Microsoft.AzureSphere/catalogs/listDevices/action",
	"Microsoft.AzureSphere/catalogs/listDeployments/action",
	"Microsoft.AzureSphere/catalogs/products/countDevices/action",
	"Microsoft.AzureSphere/catalogs/products/deviceGroups/countDevices/action",
	"Microsoft.AzureSphere/catalogs/certificates/retrieveCertChain/action",
}

// BuiltInRoles returns Azure's general built-in roles (Owner, Contributor,
// Reader, User Access Administrator), the three Azure Sphere roles and the
// IoT Hub and DPS data roles, with
// their well-known IDs and exact action strings (sphere-surfaces.md §4.1;
// learn.microsoft.com, "Azure built-in roles for General"). Every call
// returns fresh values that the caller may change.
func BuiltInRoles() []ferry.RoleDefinition {
	root := []string{"/"}
	def := func(id, name, desc string, p ferry.Permission) ferry.RoleDefinition {
		return ferry.RoleDefinition{
			ID: id, Name: name, Description: desc, Type: ferry.RoleBuiltIn,
			Permissions: []ferry.Permission{p}, AssignableScopes: slices.Clone(root),
		}
	}
	return []ferry.RoleDefinition{
		def(ferry.RoleOwner, "Owner",
			"Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
			ferry.Permission{Actions: []string{"*"}}),
		def(ferry.RoleContributor, "Contributor",
			"Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
			ferry.Permission{
				Actions: []string{"*"},
				NotActions: []string{
					"Microsoft.Authorization/*/Delete",
					"Microsoft.Authorization/*/Write",
					"Microsoft.Authorization/elevateAccess/Action",
					"Microsoft.Blueprint/blueprintAssignments/write",
					"Microsoft.Blueprint/blueprintAssignments/delete",
					"Microsoft.Compute/galleries/share/action",
					"Microsoft.Purview/consents/write",
					"Microsoft.Purview/consents/delete",
				},
			}),
		def(ferry.RoleReader, "Reader",
			"View all resources, but does not allow you to make any changes.",
			ferry.Permission{Actions: []string{"*/read"}}),
		def(ferry.RoleUserAccessAdministrator, "User Access Administrator",
			"Lets you manage user access to Azure resources.",
			ferry.Permission{Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}}),
		def(ferry.RoleAzureSphereContributor, "Azure Sphere Contributor",
			"Allows user read and write access to Azure Sphere resources.",
			ferry.Permission{Actions: []string{
				"Microsoft.AzureSphere/*",
				"Microsoft.Authorization/*/read",
				"Microsoft.Resources/deployments/*",
				"Microsoft.Resources/subscriptions/resourceGroups/read",
				"Microsoft.Insights/alertRules/*",
				"Microsoft.Insights/DiagnosticSettings/*",
				"Microsoft.Insights/DiagnosticSettingsCategories/Read",
			}}),
		def(ferry.RoleAzureSphereReader, "Azure Sphere Reader",
			"Allows user to read Azure Sphere resources.",
			ferry.Permission{Actions: append(slices.Clone(sphereReaderActions),
				"Microsoft.Authorization/*/read",
				"Microsoft.Resources/subscriptions/resourceGroups/read",
				"Microsoft.Insights/DiagnosticSettings/Read",
			)}),
		def(ferry.RoleAzureSpherePublisher, "Azure Sphere Publisher",
			"Allows user to read and download Azure Sphere resources and upload images.",
			ferry.Permission{Actions: []string{
				"Microsoft.AzureSphere/*/read",
				"Microsoft.AzureSphere/catalogs/countDevices/action",
				"Microsoft.AzureSphere/catalogs/listDeviceGroups/action",
				"Microsoft.AzureSphere/catalogs/listDeviceInsights/action",
				"Microsoft.AzureSphere/catalogs/listDevices/action",
				"Microsoft.AzureSphere/catalogs/products/countDevices/action",
				"Microsoft.AzureSphere/catalogs/products/deviceGroups/countDevices/action",
				"Microsoft.AzureSphere/catalogs/certificates/retrieveProofOfPossessionNonce/action",
				"Microsoft.AzureSphere/catalogs/certificates/retrieveCertChain/action",
				"Microsoft.AzureSphere/catalogs/images/write",
				"Microsoft.AzureSphere/catalogs/uploadImage/action",
				"Microsoft.Authorization/*/read",
				"Microsoft.Resources/subscriptions/resourceGroups/read",
				"Microsoft.Insights/DiagnosticSettings/Read",
			}}),
		// The device-plane data roles: Owner and Contributor grant no data
		// actions, as in Azure, so calling a hub's or a provisioning
		// service's service API with a token needs one of these.
		def(ferry.RoleIoTHubDataContributor, "IoT Hub Data Contributor",
			"Allows for full access to IoT Hub data plane operations.",
			ferry.Permission{DataActions: []string{"Microsoft.Devices/IotHubs/*"}}),
		def(ferry.RoleIoTHubDataReader, "IoT Hub Data Reader",
			"Allows for full read access to IoT Hub data-plane properties",
			ferry.Permission{DataActions: []string{"Microsoft.Devices/IotHubs/*/read", "Microsoft.Devices/IotHubs/fileUpload/notifications/action"}}),
		def(ferry.RoleDPSDataContributor, "Device Provisioning Service Data Contributor",
			"Allows for full access to Device Provisioning Service data-plane operations.",
			ferry.Permission{DataActions: []string{"Microsoft.Devices/provisioningServices/*"}}),
		def(ferry.RoleDPSDataReader, "Device Provisioning Service Data Reader",
			"Allows for full read access to Device Provisioning Service data-plane properties.",
			ferry.Permission{DataActions: []string{"Microsoft.Devices/provisioningServices/*/read"}}),
	}
}

// IsBuiltIn reports whether id is the ID of a built-in role.
func IsBuiltIn(id string) bool {
	for _, d := range BuiltInRoles() {
		if equalFoldASCII(id, d.ID) {
			return true
		}
	}
	return false
}

// SeedBuiltIns stores the built-in roles, creating missing ones and bringing
// changed ones back to their built-in form; running it again changes
// nothing. It returns the store's error, e.g. ECONFLICT when a custom role
// already uses a built-in role's name.
func SeedBuiltIns(ctx context.Context, store ferry.RBACStore) error {
	for _, d := range BuiltInRoles() {
		cur, err := store.GetRoleDefinition(ctx, d.ID)
		switch {
		case ferry.IsCode(err, ferry.ENOTFOUND):
		case err != nil:
			return fmt.Errorf("seed built-in role %s: %w", d.Name, err)
		case sameDefinition(cur, &d):
			continue
		default:
			d.CreatedAt = cur.CreatedAt
		}
		if err := store.PutRoleDefinition(ctx, &d); err != nil {
			return fmt.Errorf("seed built-in role %s: %w", d.Name, err)
		}
	}
	return nil
}

// sameDefinition compares what a seed sets, ignoring timestamps.
func sameDefinition(a, b *ferry.RoleDefinition) bool {
	if a.Name != b.Name || a.Description != b.Description || a.Type != b.Type ||
		!slices.Equal(a.AssignableScopes, b.AssignableScopes) || len(a.Permissions) != len(b.Permissions) {
		return false
	}
	for i := range a.Permissions {
		x, y := a.Permissions[i], b.Permissions[i]
		if !slices.Equal(x.Actions, y.Actions) || !slices.Equal(x.NotActions, y.NotActions) ||
			!slices.Equal(x.DataActions, y.DataActions) || !slices.Equal(x.NotDataActions, y.NotDataActions) {
			return false
		}
	}
	return true
}
